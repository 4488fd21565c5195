"""push_to_hub through huggingface_hub's real upload API, offline: a local server on 127.0.0.1 answers the
hub endpoints huggingface_hub calls (repo create, branch, preupload, commit) and records what arrived."""

import base64
import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

import tfgpt
from conftest import PYTHON, subprocess_env, tiny_config, tiny_model
from tfgpt.checkpoints.push import default_commit_message, push_folder, push_to_hub

TOKEN = "hf_offline_test_token"
SERVER_LIFETIME_S = 300  # the server shuts itself down after this, whatever the test does


class FakeHub:
    """The hub endpoints huggingface_hub's create_repo / create_branch / upload_folder use."""

    def __init__(self):
        self.repos, self.branches, self.commits, self.pulls, self.unexpected = [], [], [], [], []
        self.auth = set()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, obj=None):
                data = json.dumps(obj if obj is not None else {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                hub.auth.add(self.headers.get("Authorization"))
                path = urlsplit(self.path).path
                if path.startswith("/api/models/") and "/discussions/" in path:
                    repo_id, num = path[len("/api/models/"):].split("/discussions/", 1)
                    pull = hub.pulls[int(num) - 1]
                    return self._reply(200, {
                        "title": pull["title"], "num": int(num), "author": {"name": "me"},
                        "createdAt": "2026-01-01T00:00:00.000Z", "status": "draft", "isPullRequest": True,
                        "repo": {"name": repo_id, "type": "model"}, "events": [],
                        "changes": {"base": "refs/heads/main"}, "filesWithConflicts": []})
                hub.unexpected.append(("GET", self.path))
                self._reply(404, {"error": "not served here"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hub.auth.add(self.headers.get("Authorization"))
                path = urlsplit(self.path).path
                if path == "/api/repos/create":
                    d = json.loads(body)
                    hub.repos.append(d)
                    repo_id = f"{d['organization']}/{d['name']}" if d.get("organization") else d["name"]
                    return self._reply(200, {"url": f"{hub.url}/{repo_id}"})
                if path.startswith("/api/models/"):
                    rest = path[len("/api/models/"):]
                    if rest.endswith("/discussions"):
                        d = json.loads(body)
                        hub.pulls.append(dict(repo_id=rest[:-len("/discussions")], title=d["title"],
                                              pull_request=d["pullRequest"]))
                        return self._reply(200, {"num": len(hub.pulls)})
                    for kind in ("branch", "preupload", "commit"):
                        if f"/{kind}/" in rest:
                            repo_id, revision = rest.split(f"/{kind}/", 1)
                            return getattr(self, kind)(repo_id, unquote(revision), body)
                hub.unexpected.append(("POST", self.path))
                self._reply(404, {"error": "not served here"})

            def branch(self, repo_id, revision, body):
                hub.branches.append((repo_id, revision))
                self._reply(200)

            def preupload(self, repo_id, revision, body):
                files = json.loads(body)["files"]
                self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                            for f in files]})

            def commit(self, repo_id, revision, body):
                lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
                header = next(x["value"] for x in lines if x["key"] == "header")
                files = {x["value"]["path"]: base64.b64decode(x["value"]["content"])
                         for x in lines if x["key"] == "file"}
                hub.commits.append(dict(repo_id=repo_id, revision=revision, message=header["summary"],
                                        description=header.get("description", ""), files=files))
                oid = f"{len(hub.commits):040x}"
                pr = revision[len("refs/pr/"):] if revision.startswith("refs/pr/") else None
                self._reply(200, {"commitUrl": f"{hub.url}/{repo_id}/commit/{oid}", "commitOid": oid,
                                  "pullRequestUrl": f"{hub.url}/{repo_id}/discussions/{pr}" if pr else None})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.stopper = threading.Timer(SERVER_LIFETIME_S, self.server.shutdown)

    def __enter__(self):
        self.thread.start()
        self.stopper.start()
        return self

    def __exit__(self, *exc):
        self.stopper.cancel()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def hub(monkeypatch, tmp_path):
    import huggingface_hub.constants as constants

    with FakeHub() as fake:
        monkeypatch.setattr(constants, "ENDPOINT", fake.url)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)  # no user-agent registry fetch
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
        yield fake
    assert fake.unexpected == []
    assert fake.auth <= {f"Bearer {TOKEN}"}


def saved_files(obj, folder, **kwargs):
    obj.save_pretrained(folder, **kwargs)
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_model_push_uploads_the_exact_saved_files(hub, tmp_path):
    model = tiny_model("lm", seed=3)
    info = push_to_hub(model, "me/tiny-gpt", commit_message="First weights", commit_description="tiny")
    assert hub.repos == [{"name": "tiny-gpt", "organization": "me"}]
    (commit,) = hub.commits
    assert (commit["repo_id"], commit["revision"], commit["message"], commit["description"]) == (
        "me/tiny-gpt", "main", "First weights", "tiny")
    expected = saved_files(model, tmp_path / "local", safe_serialization=True)
    assert sorted(commit["files"]) == ["config.json", "generation_config.json", "model.safetensors"] == sorted(expected)
    assert commit["files"] == expected
    assert json.loads(commit["files"]["config.json"])["n_embd"] == 32
    assert info.oid == f"{1:040x}" and info.commit_url.endswith(f"/me/tiny-gpt/commit/{1:040x}")

    # the uploaded bytes load back into the same model
    (tmp_path / "pulled").mkdir()
    for name, data in commit["files"].items():
        (tmp_path / "pulled" / name).write_bytes(data)
    again = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(tmp_path / "pulled")
    ids = np.array([[1, 5, 9, 2]], np.int32)
    np.testing.assert_allclose(again(ids).logits.numpy(), model(ids).logits.numpy(), atol=1e-6)


def test_model_push_h5_and_shards(hub):
    model = tiny_model("lm", seed=1)
    push_to_hub(model, "me/h5", safe_serialization=False)
    assert sorted(hub.commits[-1]["files"]) == ["config.json", "generation_config.json", "tf_model.h5"]
    assert hub.commits[-1]["message"] == "Upload model"
    push_to_hub(model, "me/sharded", max_shard_size="20KB")
    files = sorted(hub.commits[-1]["files"])
    index = json.loads(hub.commits[-1]["files"]["model.safetensors.index.json"])
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and files == sorted(["config.json", "generation_config.json",
                                                "model.safetensors.index.json", *shards])


def test_config_push_and_save_pretrained_push(hub, tmp_path):
    cfg = tiny_config(n_layer=3)
    cfg.push_to_hub("me/cfg", private=True)
    assert hub.repos[-1] == {"name": "cfg", "organization": "me", "visibility": "private"}
    assert hub.commits[-1]["message"] == "Upload config"
    assert hub.commits[-1]["files"] == {"config.json": cfg.to_json_string().encode()}
    (tmp_path / "keep" / "other.txt").parent.mkdir()
    (tmp_path / "keep" / "other.txt").write_text("not part of the config")
    cfg.save_pretrained(tmp_path / "keep", push_to_hub=True, repo_id="me/cfg2", commit_message="cfg only")
    assert hub.commits[-1]["files"] == {"config.json": (tmp_path / "keep" / "config.json").read_bytes()}
    assert hub.commits[-1]["message"] == "cfg only" and hub.commits[-1]["repo_id"] == "me/cfg2"
    assert tfgpt.OpenAIGPTConfig.from_dict(json.loads(hub.commits[-1]["files"]["config.json"])) == cfg


def test_tokenizer_push(hub, tmp_path, gpt_tokenizer):
    push_to_hub(gpt_tokenizer, "me/tok")
    commit = hub.commits[-1]
    assert commit["message"] == "Upload tokenizer"
    assert commit["files"] == saved_files(gpt_tokenizer, tmp_path / "tok")
    assert {"vocab.json", "merges.txt"} <= set(commit["files"])


def test_revision_branch_and_pull_request(hub):
    cfg = tiny_config()
    push_to_hub(cfg, "me/rev", revision="dev")
    assert hub.branches == [("me/rev", "dev")] and hub.commits[-1]["revision"] == "dev"
    info = push_to_hub(cfg, "me/rev", create_pr=True, commit_message="Propose config")
    assert hub.pulls == [{"repo_id": "me/rev", "title": "Propose config", "pull_request": True}]
    assert hub.commits[-1]["revision"] == "refs/pr/1" and hub.commits[-1]["message"] == "Propose config"
    assert info.pr_url.endswith("/me/rev/discussions/1")


def test_bad_arguments_raise_before_any_request(hub, tmp_path):
    with pytest.raises(TypeError, match="save_pretrained"):
        push_to_hub(object(), "me/x")
    with pytest.raises(TypeError, match="safe_serialization"):
        push_to_hub(tiny_config(), "me/x", safe_serialization=False)
    with pytest.raises(TypeError, match="max_shard_size"):
        push_to_hub(tiny_config(), "me/x", max_shard_size="1MB")
    with pytest.raises(ValueError, match="use_temp_dir"):
        push_to_hub(tiny_config(), "me/x", use_temp_dir=False)
    with pytest.raises(ValueError, match="repo_id"):
        push_folder(tmp_path, "")
    assert hub.repos == [] and hub.commits == []
    assert default_commit_message(tiny_config()) == "Upload config"


def test_hf_endpoint_environment_variable_reaches_the_upload(tmp_path):
    script = (
        "import tfgpt\n"
        "from tfgpt.checkpoints.push import push_to_hub\n"
        "info = push_to_hub(tfgpt.OpenAIGPTConfig(n_layer=2), 'me/env', commit_message='via env')\n"
        "print(info.oid)\n"
    )
    with FakeHub() as fake:
        env = subprocess_env(HF_ENDPOINT=fake.url, HF_TOKEN=TOKEN, HF_HOME=tmp_path / "hf_home",
                             HF_HUB_OFFLINE="0", HF_HUB_DISABLE_TELEMETRY="1")
        out = subprocess.run([PYTHON, "-c", script], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == f"{1:040x}"
    assert fake.commits[0]["message"] == "via env" and fake.commits[0]["repo_id"] == "me/env"
    assert json.loads(fake.commits[0]["files"]["config.json"])["n_layer"] == 2
    assert fake.unexpected == [] and fake.auth == {f"Bearer {TOKEN}"}
