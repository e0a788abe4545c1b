"""A `DocumentScorer` that asks an LLM: each document put in the user's prompt, the
answer parsed into the declared fields, every answer kept in the cache.

The scorer reads the cache first (the run's answers, then the shared folder) and asks
the model only for what is not there, within the client's bounds; a rerun asks
nothing. With calls off (a replay: ``tradeloom parity``) a document whose answer is
not cached is NaN with that reason, never asked.

A server that cannot be reached (its connection refused, its name unresolved, as many
times in a row as a document's ``max_attempts``: the client's `Breaker`) stops a
backtest (``stop_unreachable``) with `LlmUnreachable`, one line naming the feature (where
the strategy file declares it, its kind and name), the address and the attempts, once
the answers that did come are cached. A paper or live run goes on: the breaker holds
requests back for ``max_backoff_seconds``, the documents in that time are NaN at once
with the reason that the endpoint is unreachable, and each opening of the breaker is one
warning (``llm_unreachable``); the retries before it are logged at debug only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tradeloom.errors import ServiceUnreachable
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.lazy import numpy as np
from tradeloom.text.llm_cache import AnswerCache, CachedAnswer, request_key
from tradeloom.text.llm_calls import breaker_of, call_all
from tradeloom.text.llm_client import ChatClient, ChatRequest
from tradeloom.text.llm_fields import FieldRange, answer_schema, parse_answer
from tradeloom.text.scoring import DocumentScores

if TYPE_CHECKING:
    import pandas as pd

    from tradeloom.text.documents import Documents
    from tradeloom.text.llm_prompt import PromptTemplate

__all__ = ["NOT_CACHED", "LlmScorer", "LlmUnreachable", "default_system"]

_log = logger("tradeloom.text.llm")

NOT_CACHED = "no cached answer, and this run asks the model nothing (calls: off)"
"""The reason of a document a replay found no answer for."""


class LlmUnreachable(ServiceUnreachable):
    """A backtest's model server cannot be reached: the run stops (exit 1, one line)."""


def default_system(fields: Mapping[str, FieldRange]) -> str:
    """Return the system message used where the strategy gives none."""
    listed = ", ".join(f'"{name}" ({spec.min:g} to {spec.max:g})' for name, spec in fields.items())
    return f"Answer with one JSON object and nothing else, with these numbers: {listed}."


class LlmScorer:
    """Score documents by asking a model through a `ChatClient`.

    Args:
        client: Sends one request; its bounds apply to every call.
        prompt: The user's prompt, rendered per document.
        fields: The numbers asked for, in column order, with their ranges.
        cache: Where answers are read first and kept.
        system: The system message (`default_system` where None).
        calls: False to ask nothing (a replay): an answer not cached is NaN.
        stop_unreachable: True (a backtest, a sweep, check-lookahead): a server that
            cannot be reached raises `LlmUnreachable`; False (paper, live): its documents
            are NaN with that reason while the breaker holds requests back.
        label: The feature's name, for the message that stops a run.
        where: Where the strategy file declares the feature, ``FILE:LINE:COL features.N``
            (`tradeloom.plugin.BuildContext`'s location and path), for that message; ''
            where it was built from no file's entry.

    Attributes:
        calls_made: Requests whose answers were not cached (each may have taken several
            attempts), over this scorer's life.
    """

    def __init__(
        self,
        client: ChatClient,
        prompt: PromptTemplate,
        fields: Mapping[str, FieldRange],
        cache: AnswerCache,
        *,
        system: str | None = None,
        calls: bool = True,
        stop_unreachable: bool = True,
        label: str = "llm",
        where: str = "",
    ) -> None:
        if not fields:
            raise ValueError("LlmScorer needs at least one field")
        self._client = client
        self._prompt = prompt
        self._fields = dict(fields)
        self._cache = cache
        self._system = default_system(self._fields) if system is None else system
        self._schema = answer_schema(self._fields)
        self._calls = calls
        self._stop = stop_unreachable
        self._label = label
        self._where = where
        self.breaker = breaker_of(client.bounds)
        """Kept across calls: a live run's ticks share what the server did."""
        self.calls_made = 0

    @property
    def fields(self) -> tuple[str, ...]:
        """The declared fields, in column order."""
        return tuple(self._fields)

    @property
    def identity(self) -> str:
        """The client's identity, the prompt's and system message's hashes, the fields."""
        described = {
            "client": self._client.identity,
            "prompt_sha256": self._prompt.digest,
            "system": self._system,
            "fields": {name: [spec.min, spec.max] for name, spec in self._fields.items()},
        }
        return "llm " + json.dumps(described, sort_keys=True, separators=(",", ":"))

    @property
    def knowledge_cutoff(self) -> pd.Timestamp | None:
        """The client's model's declared cutoff."""
        return self._client.knowledge_cutoff

    @property
    def cache(self) -> AnswerCache:
        """The answers read and kept (the run's file is written from it)."""
        return self._cache

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    def request(self, documents: Documents, row: int) -> dict[str, Any]:
        """Return the request (as hashed for the cache) for document ``row``."""
        messages = [["user", self._prompt.render(documents, row, self._fields)]]
        if self._system:
            messages.insert(0, ["system", self._system])
        return {
            "client": dict(self._client.identity),
            "messages": messages,
            "answer_schema": self._schema,
        }

    def score(self, documents: Documents) -> DocumentScores:
        """Score every document: cached answers read, the others asked for.

        Raises:
            CorruptCache: A cached answer fails its check.
            LlmUnreachable: The server cannot be reached and unreachable stops the run
                (the answers that came are cached first).
        """
        requests = [self.request(documents, row) for row in range(len(documents))]
        keys = [request_key(r) for r in requests]
        answers: dict[str, str] = {}
        failures: dict[str, str] = {}
        missing: dict[str, dict[str, Any]] = {}
        for key, request in zip(keys, requests, strict=True):
            if key in answers or key in missing:
                continue
            cached = self._cache.get(key)
            if cached is not None:
                answers[key] = cached.answer
            else:
                missing[key] = request
        if missing and not self._calls:
            failures.update(dict.fromkeys(missing, NOT_CACHED))
        elif missing:
            asked = list(missing)
            chats = [
                ChatRequest(
                    tuple((role, content) for role, content in missing[key]["messages"]),
                    self._schema,
                )
                for key in asked
            ]
            self.calls_made += len(chats)
            opened = self.breaker.opened
            unreachable = False
            for outcome in call_all(self._client, chats, breaker=self.breaker):
                key = asked[outcome.index]
                if outcome.answer is None:
                    failures[key] = outcome.reason
                    unreachable |= outcome.unreachable
                    continue
                answers[key] = outcome.answer
                self._cache.put(CachedAnswer(key, missing[key], outcome.answer))
            if unreachable and self._stop and self.breaker.is_open:
                raise LlmUnreachable(self._unreachable())
            if self.breaker.opened > opened:  # a paper or live run trades on: told once
                _log.warning(
                    "llm_unreachable",
                    feature=self._named(),
                    error=self.breaker.last,
                    attempts=self.breaker.after,
                    asked_again_seconds=self.breaker.cool_down,
                )
        values = np.full((len(documents), len(self._fields)), np.nan)
        reasons: list[str] = []
        for row, key in enumerate(keys):
            if key in failures:
                reasons.append(failures[key])
                continue
            parsed, reason = parse_answer(answers[key], self._fields)
            if parsed is not None:
                values[row] = parsed
            reasons.append(reason)
        return DocumentScores(values, tuple(reasons))

    def _unreachable(self) -> str:
        kept = (
            "the answers already read are kept in the shared cache and not asked again"
            if self._cache.shared is not None
            else "with shared_cache: false, the answers read are asked again"
        )
        return (
            f"{self._named()}: {self.breaker.last} ({self.breaker.after} attempts in a row); "
            f"start the model's server (or correct client.base_url) and run again: {kept}"
        )

    def _named(self) -> str:
        return f"{self._where or 'features'}: text_llm '{self._label}'"
