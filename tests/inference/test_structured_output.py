"""Structured output and tool calls, enforced by llama.cpp grammars: whatever the (tiny, real) model
would rather say, the reply parses and validates against the schema the client sent."""

from __future__ import annotations

import json

import httpx
import jsonschema
import ollama
import openai
import pytest

pytestmark = pytest.mark.slow  # a few hundred grammar-constrained tokens per test

PERSON = {"type": "object", "additionalProperties": False, "required": ["name", "age", "hobbies", "contact"],
          "properties": {"name": {"type": "string", "maxLength": 40}, "age": {"type": "integer", "minimum": 0, "maximum": 120},
                         "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 30}, "minItems": 1, "maxItems": 3},
                         "contact": {"type": "object", "required": ["email"], "additionalProperties": False,
                                     "properties": {"email": {"type": "string", "maxLength": 60}, "verified": {"type": "boolean"}}},
                         "mood": {"type": "string", "enum": ["happy", "sad", "calm"]}}}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "required": ["city", "unit"],
                   "properties": {"city": {"type": "string", "maxLength": 40}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}}}}
ADD = {"type": "function", "function": {
    "name": "add", "description": "Add two integers",
    "parameters": {"type": "object", "required": ["a", "b"], "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}}}
PROMPTS = ["Tell me about yourself.", "What is 2 + 2?", "Describe a person you admire.", "Write a haiku about rain."]


@pytest.fixture
def client(engine):
    return ollama.Client(host=engine.host, timeout=300)


@pytest.fixture
def oai(engine):
    return openai.OpenAI(base_url=engine.host + "/v1", api_key="unused", max_retries=0, timeout=300)


def test_ollama_format_schema_always_validates_whatever_is_asked(client):
    for seed, prompt in enumerate(PROMPTS):
        reply = client.chat(model="smollm2", messages=[{"role": "user", "content": prompt}], format=PERSON,
                            options={"seed": seed, "num_predict": 400})
        jsonschema.validate(json.loads(reply.message.content), PERSON)
        assert reply.done_reason == "stop"
    text = "".join(part.response for part in client.generate(model="smollm2", prompt="Who are you?", format=PERSON, stream=True,
                                                             options={"temperature": 0, "num_predict": 400}))
    jsonschema.validate(json.loads(text), PERSON)


def test_format_json_gives_a_json_object(client):
    reply = client.generate(model="smollm2", prompt="List two fruits.", format="json", options={"temperature": 0, "num_predict": 300})
    assert isinstance(json.loads(reply.response), dict)


def test_openai_response_format_json_schema_and_json_object(oai):
    for seed, prompt in enumerate(PROMPTS[:2]):
        reply = oai.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": prompt}], seed=seed, max_tokens=400,
                                            response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}})
        jsonschema.validate(json.loads(reply.choices[0].message.content), PERSON)
    reply = oai.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Two fruits, as JSON."}], max_tokens=300,
                                        temperature=0, response_format={"type": "json_object"})
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_schemas_the_engine_cannot_enforce_are_refused_and_it_stays_up(client, engine):
    hostile = [{"type": "array", "minItems": 100_000}, {"type": "object", "properties": {"x": {"$ref": "#/nowhere"}}},
               {"type": "object", "properties": {"x": {"$ref": "https://example.com/schema.json"}}},
               {"type": "string", "pattern": "(" * 500}, {"type": "integer", "minimum": 5, "maximum": 1}, _nested(60)]
    for schema in hostile:
        with pytest.raises(ollama.ResponseError) as caught:
            client.generate(model="smollm2", prompt="hi", format=schema, options={"num_predict": 4})
        assert caught.value.status_code == 400, schema
    raw = httpx.post(f"{engine.host}/api/generate", json={"model": "smollm2", "prompt": "hi", "format": "yaml"})
    assert raw.status_code == 400 and "format" in raw.json()["error"]
    assert client.generate(model="smollm2", prompt="hi", options={"num_predict": 2}).done


def _nested(depth: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def test_a_required_tool_call_round_trip_through_the_openai_client(oai):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = oai.chat.completions.create(model="smollm2", messages=messages, tools=[ADD, WEATHER], tool_choice="required", temperature=0)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    declared = {"add": ADD, "get_weather": WEATHER}[call.function.name]["function"]["parameters"]
    jsonschema.validate(json.loads(call.function.arguments), declared)
    assert call.id.startswith("call_") and call.type == "function"

    named = oai.chat.completions.create(model="smollm2", messages=messages, tools=[ADD, WEATHER], temperature=0,
                                        tool_choice={"type": "function", "function": {"name": "add"}})
    assert [c.function.name for c in named.choices[0].message.tool_calls] == ["add"]
    jsonschema.validate(json.loads(named.choices[0].message.tool_calls[0].function.arguments), ADD["function"]["parameters"])

    result = json.dumps({"temperature": 18, "unit": "celsius", "sky": "sunny"})
    follow_up = messages + [choice.message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": result}]
    answer = oai.chat.completions.create(model="smollm2", messages=follow_up, tools=[ADD, WEATHER], tool_choice="none",
                                         temperature=0, max_tokens=40)
    assert answer.choices[0].finish_reason in ("stop", "length") and answer.choices[0].message.content
    without_result = oai.chat.completions.create(model="smollm2", messages=follow_up[:-1], tools=[ADD, WEATHER], tool_choice="none",
                                                 max_tokens=1)
    assert answer.usage.prompt_tokens > without_result.usage.prompt_tokens + 10, "the tool's result reached the model"

    streamed = list(oai.chat.completions.create(model="smollm2", messages=messages, tools=[WEATHER], tool_choice="required",
                                                temperature=0, stream=True))
    calls = [c for chunk in streamed if chunk.choices for c in (chunk.choices[0].delta.tool_calls or [])]
    assert calls and calls[0].function.name == "get_weather" and streamed[-1].choices[0].finish_reason == "tool_calls"


def test_the_model_may_call_a_tool_by_itself_on_apichat(client):
    """Ollama's /api/chat has no tool_choice: the model decides. With earlier calls in the
    conversation SmolLM2 calls the tool, and the arguments match the declared schema."""
    shots = []
    for city in ["Rome", "Oslo", "Lima"]:
        shots += [{"role": "user", "content": f"What is the weather in {city}?"},
                  {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather",
                                                                                    "arguments": {"city": city, "unit": "celsius"}}}]}]
    shots.append({"role": "user", "content": "What is the weather in Paris?"})
    reply = client.chat(model="smollm2", messages=shots, tools=[WEATHER], options={"temperature": 0})
    assert reply.message.tool_calls and reply.message.content == ""
    call = reply.message.tool_calls[0].function
    assert call.name == "get_weather"
    jsonschema.validate(dict(call.arguments), WEATHER["function"]["parameters"])
    records = list(client.chat(model="smollm2", messages=shots, tools=[WEATHER], options={"temperature": 0}, stream=True))
    assert any(r.message.tool_calls for r in records) and records[-1].done
    assert "<tool_call>" not in "".join(r.message.content for r in records), "the call is never shown as text"

    plain = client.chat(model="smollm2", messages=[{"role": "user", "content": "Say hello to Ana."}], tools=[WEATHER],
                        options={"temperature": 0, "num_predict": 20})
    assert plain.message.content and not plain.message.tool_calls


def test_numeric_bounds_become_grammar_that_allows_exactly_the_range():
    """llama-cpp-python's converter ignores minimum/maximum; ours writes them into the grammar.
    Checked by brute force, reading the GBNF fragment as the regular expression it is."""
    import re

    from backend.inference.structured import bounded_number, integer_range

    def matcher(fragment: str):
        return re.compile(re.sub(r'"([^"]*)"', lambda m: re.escape(m.group(1)), fragment).replace(" ", "")).fullmatch

    for lo, hi in [(0, 120), (-5, 5), (-130, -7), (7, 7), (13, 1009), (-1000, 999), (5, 10**5)]:
        accepts = matcher(integer_range(lo, hi))
        assert {n for n in range(lo - 100, hi + 100) if accepts(str(n))} == set(range(lo, hi + 1)), (lo, hi)
        assert not accepts("0" + str(abs(hi))) and not accepts("-0")
    numbers = [f"{sign}{whole}{fraction}" for sign in ("", "-") for whole in range(10) for fraction in ("", ".5", ".05", ".9", ".1")]
    for schema in [{"minimum": -2.5, "maximum": 3}, {"exclusiveMinimum": 0, "exclusiveMaximum": 1}, {"minimum": 1.5, "maximum": 7.25}]:
        accepts = matcher(bounded_number({"type": "number", **schema}))
        lo = schema.get("minimum", schema.get("exclusiveMinimum"))
        hi = schema.get("maximum", schema.get("exclusiveMaximum"))
        inside = [n for n in numbers if accepts(n)]
        assert inside and all(lo <= float(n) <= hi for n in inside), schema
        assert all(float(n) != lo for n in inside) if "exclusiveMinimum" in schema else True
