"""The engine's OpenAI-compatible API, driven by the official ``openai`` client (and raw HTTP where
the wire format itself is the point), on the real server with the real SmolLM2."""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading

import httpx
import openai
import pytest

from tests.conftest import wait_for

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"]}}}


@pytest.fixture
def oai(engine):
    return openai.OpenAI(base_url=engine.host + "/v1", api_key="unused", max_retries=0, timeout=300)


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_models_are_listed_and_a_missing_one_is_a_404_in_openais_shape(oai):
    assert "smollm2:latest" in [m.id for m in oai.models.list()]
    assert oai.models.retrieve("smollm2:latest").id == "smollm2:latest"
    with pytest.raises(openai.NotFoundError) as caught:
        oai.chat.completions.create(model="no-such-model", messages=ask("hi"))
    assert caught.value.body["type"] == "not_found_error" and "no-such-model" in caught.value.body["message"]


def test_chat_completion_streamed_and_whole_agree_and_count_usage(oai, engine):
    settings = {"model": "smollm2", "messages": ask("Name three colours."), "max_tokens": 24, "temperature": 0, "seed": 7}
    # llama.cpp reuses the cached prefix of the previous prompt, and a different split of the prompt
    # into batches can flip a near-tie in greedy decoding: both runs start from the same cache state.
    oai.chat.completions.create(model="smollm2", messages=ask("Something else."), max_tokens=1)
    whole = oai.chat.completions.create(**settings)
    assert whole.object == "chat.completion" and whole.choices[0].finish_reason in ("stop", "length")
    assert whole.usage.completion_tokens > 0 and whole.usage.prompt_tokens > 5
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens

    oai.chat.completions.create(model="smollm2", messages=ask("Something else."), max_tokens=1)
    chunks = list(oai.chat.completions.create(**settings, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason

    with httpx.stream("POST", f"{engine.host}/v1/chat/completions", json={**settings, "stream": True}, timeout=300) as raw:
        assert raw.headers["content-type"].startswith("text/event-stream")
        events = [line for line in raw.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["object"] == "chat.completion.chunk"


def test_text_completion_and_the_stop_and_length_rules(oai):
    done = oai.completions.create(model="smollm2", prompt="List the days of the week.", max_tokens=6, temperature=0)
    assert done.object == "text_completion" and done.choices[0].finish_reason == "length" and done.usage.completion_tokens == 6
    stopped = oai.chat.completions.create(model="smollm2", messages=ask("Count from 1 to 10, separated by commas."), temperature=0,
                                          max_tokens=60, stop=["5"])
    assert "5" not in stopped.choices[0].message.content and stopped.choices[0].finish_reason == "stop"


def test_embeddings_in_floats_and_base64(oai):
    floats = oai.embeddings.create(model="smollm2", input=["a cat sat on the mat", "stock markets fell"])
    assert [d.index for d in floats.data] == [0, 1] and floats.usage.prompt_tokens > 4
    vector = floats.data[0].embedding
    assert abs(sum(v * v for v in vector) - 1) < 1e-3
    raw = oai.embeddings.with_raw_response.create(model="smollm2", input="a cat sat on the mat", encoding_format="base64")
    packed = base64.b64decode(json.loads(raw.text)["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(packed) // 4}f", packed)
    assert max(abs(a - b) for a, b in zip(decoded, vector)) < 1e-5


def test_requests_the_engine_cannot_serve_get_openai_style_400s(oai, engine):
    cases = [
        {"messages": ask("hi"), "n": 2},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]},
        {"messages": []},
        {"messages": ask("hi"), "temperature": 5},
        {"messages": ask("hi"), "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array", "minItems": 10**6}}}},
        {"messages": ask("hi"), "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "not_declared"}}},
    ]
    for case in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            oai.chat.completions.create(model="smollm2", max_tokens=4, **case)
        assert caught.value.body["type"] == "invalid_request_error" and caught.value.body["message"], case
    assert oai.chat.completions.create(model="smollm2", messages=ask("hi"), max_tokens=2).choices, "the server stays up"


@pytest.mark.slow
def test_eight_streaming_clients_are_served_in_arrival_order_and_one_leaving_frees_its_turn(engine, oai):
    """Eight streams queue FIFO for the one model; the third disconnects after its first tokens and
    the rest all finish; a client that stops reading its stream holds nobody up."""
    oai.chat.completions.create(model="smollm2", messages=ask("hi"), max_tokens=1)  # loaded
    loaded = engine.runner.chat_instance("smollm2:latest")
    started: list[int] = []
    finished: dict[int, str] = {}
    lock = threading.Lock()

    def client(index: int) -> None:
        stream = oai.chat.completions.create(model="smollm2", messages=ask(f"Write a sentence about the number {index}."),
                                             max_tokens=12, temperature=0, stream=True)
        text = ""
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                if not text:
                    with lock:
                        started.append(index)
                text += chunk.choices[0].delta.content
                if index == 2:
                    stream.close()  # hangs up mid-answer
                    finished[index] = "left"
                    return
        finished[index] = text

    # A client that asks for a long stream and then never reads it.
    body = json.dumps({"model": "smollm2", "stream": True, "max_tokens": 400, "messages": ask("Tell a long story.")}).encode()
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting, so the window stays small
    stalled.connect(("127.0.0.1", engine.port))
    stalled.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{engine.port}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    try:
        assert wait_for(loaded.lock.locked), "the stalled client's generation started"
        threads = []
        for index in range(8):
            thread = threading.Thread(target=client, args=(index,))
            thread.start()
            threads.append(thread)
            assert wait_for(lambda: loaded.lock.waiting() >= len(threads) - len(finished)), f"client {index} is queued"
        for thread in threads:
            thread.join(timeout=600)
        assert started == list(range(8)), f"served out of arrival order: {started}"
        assert finished[2] == "left" and all(finished[i] for i in range(8))
        assert wait_for(lambda: not loaded.lock.locked()), "the model is free again"
    finally:
        stalled.close()
    assert oai.chat.completions.create(model="smollm2", messages=ask("hi"), max_tokens=2).choices



def test_a_client_that_leaves_while_waiting_gives_up_its_place_at_once(engine, oai):
    oai.chat.completions.create(model="smollm2", messages=ask("hi"), max_tokens=1)
    loaded = engine.runner.chat_instance("smollm2:latest")
    body = json.dumps({"model": "smollm2", "stream": True, "max_tokens": 4, "messages": ask("hi")}).encode()
    with loaded.lock:  # another generation holds the model
        waiting = socket.create_connection(("127.0.0.1", engine.port))
        waiting.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{engine.port}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        assert wait_for(lambda: loaded.lock.waiting() == 1), "the request is queued"
        waiting.close()
        assert wait_for(lambda: loaded.lock.waiting() == 0), "it left the queue while the model was still busy"
    assert oai.chat.completions.create(model="smollm2", messages=ask("hi"), max_tokens=2).choices
