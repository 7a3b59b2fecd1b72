import sys
import threading

from backend.jobs import JobRegistry, run_json_lines_subprocess


def test_job_reports_progress_and_result():
    registry = JobRegistry()
    events = []
    registry.subscribe(events.append)

    def work(ctx):
        for i in range(3):
            ctx.progress("counting", i + 1, 3)
        return {"answer": 42}

    job_id = registry.start("test", "count", work)
    record = registry.wait(job_id, timeout=10)
    assert record.state == "succeeded" and record.result == {"answer": 42}
    progress = [e for e in events if e["type"] == "progress"]
    assert [(e["completed"], e["total"]) for e in progress] == [(1, 3), (2, 3), (3, 3)]
    assert events[-1]["type"] == "job" and events[-1]["job"]["state"] == "succeeded"


def test_cancel_stops_a_cooperative_job():
    registry = JobRegistry()
    started = threading.Event()

    def work(ctx):
        started.set()
        while True:
            ctx.raise_if_cancelled()
            threading.Event().wait(0.01)

    job_id = registry.start("test", "forever", work)
    started.wait(5)
    registry.cancel(job_id)
    assert registry.wait(job_id, timeout=10).state == "cancelled"


SUBPROCESS_SCRIPT = r"""
import json, sys
for i in range(1, 4):
    print(json.dumps({"type": "progress", "status": "training", "completed": i, "total": 3, "loss": 2.0 / i}), flush=True)
print("a plain log line", flush=True)
print(json.dumps({"type": "result", "adapter": "x"}), flush=True)
"""


def test_json_lines_subprocess_relays_events():
    registry = JobRegistry()
    events = []
    registry.subscribe(events.append)
    job_id = registry.start("train", "t", lambda ctx: run_json_lines_subprocess(ctx, [sys.executable, "-c", SUBPROCESS_SCRIPT]))
    record = registry.wait(job_id, timeout=30)
    assert record.state == "succeeded"
    assert record.result["adapter"] == "x"
    losses = [e["loss"] for e in events if e["type"] == "progress"]
    assert losses == [2.0, 1.0, 2.0 / 3]
    assert any(e["type"] == "log" and e["line"] == "a plain log line" for e in events)


def test_failing_subprocess_reports_its_error_event():
    script = 'import json; print(json.dumps({"type": "error", "code": "bad_data", "message": "No examples."})); raise SystemExit(3)'
    registry = JobRegistry()
    job_id = registry.start("train", "t", lambda ctx: run_json_lines_subprocess(ctx, [sys.executable, "-c", script]))
    record = registry.wait(job_id, timeout=30)
    assert record.state == "failed"
    assert record.error == {"code": "bad_data", "message": "No examples."}


def test_an_internal_error_is_logged_with_its_traceback_and_shown_as_a_stable_message(caplog):
    registry = JobRegistry()

    def work(ctx):
        return {}["eval_loss"]  # a bug, not a user's mistake

    record = registry.wait(registry.start("training", "Training run", work), timeout=10)
    assert record.state == "failed" and record.error["code"] == "internal_error"
    assert "KeyError" not in record.error["message"] and "Training run" in record.error["message"]
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records), "the traceback is in the log"


def test_a_crashed_process_without_an_error_event_gets_a_stable_message_and_its_stderr_is_logged(caplog):
    script = "import sys; print('Traceback (most recent call last):', file=sys.stderr); print('KeyError: x', file=sys.stderr); sys.exit(1)"
    registry = JobRegistry()
    record = registry.wait(registry.start("train", "t", lambda ctx: run_json_lines_subprocess(ctx, [sys.executable, "-c", script])), 30)
    assert record.state == "failed" and "KeyError" not in record.error["message"] and "details are in the log" in record.error["message"]
    assert any("KeyError: x" in r.getMessage() for r in caplog.records)


def test_the_trainer_process_turns_an_internal_error_into_an_error_event(monkeypatch, capsys):
    import json

    from backend.training import trainer

    def broken(job_dir, resume):
        raise KeyError("eval_loss")

    monkeypatch.setattr(trainer, "run", broken)
    assert trainer.main(["/nonexistent-job"]) == 1
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    assert events[-1]["type"] == "error" and events[-1]["code"] == "internal_error" and "eval_loss" not in events[-1]["message"]
    assert "KeyError: 'eval_loss'" in captured.err, "the traceback goes to stderr, which the app logs"
