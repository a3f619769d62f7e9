"""Tell Flux at once (docs/reference.md section 8, "Notify"): after each push, POST the notify URL of
every destination with a changed file under its path, and of no other destination.

The wire format, what Flux's `generic` and `generic-hmac` Receivers take
(fluxcd/notification-controller, internal/server/receiver_handlers.go):

    POST <notify.url>
    Content-Type: application/json
    User-Agent: statewriter/<version>
    X-Signature: sha256=<hex HMAC-SHA256 of the exact body, keyed with the token>
                                        (only with notify.hmacTokenFile)

    {"destination":"<name>","commit":"<sha of the pushed commit>"}

The writer lane calls `Notifier` (a `Writer` listener) with each `Published`. That call works
out which destinations changed (the published paths are sorted, so one pass with a prefix
check; the destination records are read only when one of them changed) and leaves one
pending delivery per destination: a newer commit replaces a delivery still waiting, so
several pending notifications of one destination become one POST of the newest commit. Each
destination with something to deliver has a sender thread of its own (started when needed,
gone when it has nothing left, MAX_SENDERS at once), so a receiver that accepts and never
answers holds up only its own destination's notifications; a connection error, a timeout,
a 429 or a 5xx is retried ATTEMPTS times in all with doubling backoff (a newer commit
cancels the retry), anything else is logged and dropped.
Nothing here ever fails, or waits for, a write. Logs name the destination, the commit and the
receiver's origin (scheme, host and port), never the URL's path (a generic Receiver's path is
its only secret) nor the token.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from gitops import layout
from gitops.destination import Destination
from gitops.index import decode_destination
from gitops.redact import origin
from gitops.tree import Tree
from gitops.writer import Published

log = logging.getLogger("statewriter.notify")

ATTEMPTS = 4  # POSTs of one commit to one destination, in all
BACKOFF = 0.5  # seconds before the first retry; doubled for each one after
CONNECT_TIMEOUT = 5.0
TIMEOUT = 10.0  # seconds for one POST, answer included
# Sender threads at once: one per destination with something to deliver, so one receiver
# that hangs never holds up another destination's notification (past this many at once, a
# destination waits for a sender, healthy ones first).
MAX_SENDERS = 256
CLOSE_SECONDS = 5.0  # on shutdown: how long what is pending gets for one last attempt
TOKEN_CHECK_SECONDS = 1.0  # a changed hmacTokenFile is in effect within about this long

# What became of one POST (the `observe` callback hears destination and outcome)
DELIVERED, RETRIED, FAILED = "delivered", "retried", "failed"
Observe = Callable[[str, str], None]

_STATE_PREFIX = layout.STATE + "/"
_RECORDS_PREFIX = layout.DESTINATIONS_DIR + "/"


def signature(body: bytes, token: str) -> str:
    """The `X-Signature` header Flux's generic-hmac Receiver checks (go-github's
    ValidateSignature: `<hash>=<hex digest>`, HMAC of the raw body keyed with the Secret's
    `token`)."""
    return "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def payload(destination: str, commit: str) -> bytes:
    """The body of a notification: compact JSON, destination first."""
    return json.dumps({"destination": destination, "commit": commit},
                      separators=(",", ":")).encode()


def changed_destinations(paths: Iterable[str], destinations: Iterable[Destination]) -> set[str]:
    """Names of the destinations with a changed file under their path (`<path>/...`).
    `paths` sorted (as `Published.paths` are): the files of one folder are then next to each
    other, so each folder costs one lookup and its other files a prefix check."""
    by_path = {destination.path: destination.name for destination in destinations}
    tops = {path.partition("/")[0] for path in by_path}
    found: set[str] = set()
    skip = _STATE_PREFIX
    for path in paths:
        if path.startswith(skip):
            continue
        skip = _STATE_PREFIX
        parts = path.split("/")[:-1]  # the file itself is below the destination's folder
        prefix = ""
        for part in parts[:8]:  # a destination path is 1-8 labels
            prefix = f"{prefix}/{part}" if prefix else part
            name = by_path.get(prefix)
            if name is not None:
                found.add(name)
                skip = prefix + "/"
                break
        else:
            if parts and parts[0] not in tops:  # a top folder that holds no destination
                skip = parts[0] + "/"
    return found


class TokenFile:
    """The HMAC token in `notify.hmacTokenFile`, read again when the file changes (looked at,
    one stat, at most once per `interval`), as `auth.tokens[].tokenFile` are: a rotated token
    takes effect without a restart. Its content without surrounding whitespace; None while
    the file is missing or empty (logged once, naming the file, never the token)."""

    def __init__(self, path: Path, interval: float = TOKEN_CHECK_SECONDS) -> None:
        self.path = path
        self._interval = interval
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int, int] | None = None
        self._token: str | None = None
        self._checked: float | None = None
        self._ok: bool | None = None  # None: never read

    def read(self) -> str | None:
        with self._lock:
            now = time.monotonic()
            if self._checked is not None and now - self._checked < self._interval:
                return self._token
            self._checked = now
            had = self._token
            try:
                stat = os.stat(self.path)
                signature = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
                if signature == self._signature:
                    return self._token
                token = self.path.read_text().strip() or None
                problem = "is empty"
            except OSError as error:
                signature, token, problem = None, None, f"cannot be read ({error.strerror or error})"
            except UnicodeDecodeError:
                signature, token, problem = None, None, "is not UTF-8 text"
            self._signature, self._token = signature, token
            if token is None and self._ok is not False:
                log.error("notify.hmacTokenFile %s %s: notifications are not sent until it "
                          "holds a token again", self.path, problem)
            elif token is not None and had is not None and token != had:
                log.info("notify.hmacTokenFile %s changed: notifications are signed with the "
                         "new token", self.path)
            self._ok = token is not None
            return token


@dataclass(frozen=True)
class _Delivery:
    destination: str
    url: str
    commit: str
    attempt: int = 0  # POSTs of this commit made so far
    due: float = 0.0  # time.monotonic() from which it may be sent
    final: bool = False  # shutting down: one attempt, no retry


class Notifier:
    """A `Writer` listener that POSTs destinations' notify URLs (see the module's doc).

    `tree(commit)` reads the store at a commit (the destination records, when one changed);
    `token_file` is `notify.hmacTokenFile` (None: unsigned, for a `generic` Receiver);
    `observe(destination, outcome)` hears what became of each POST (DELIVERED, RETRIED or
    FAILED), from the sender threads."""

    def __init__(
        self,
        tree: Callable[[str | None], Tree],
        token_file: Path | None = None,
        *,
        user_agent: str = "statewriter",
        attempts: int = ATTEMPTS,
        backoff: float = BACKOFF,
        timeout: float = TIMEOUT,
        max_senders: int = MAX_SENDERS,
        token_check: float = TOKEN_CHECK_SECONDS,
        observe: Observe = lambda destination, outcome: None,
    ) -> None:
        self._tree = tree
        self._observe = observe
        self._token = TokenFile(token_file, token_check) if token_file is not None else None
        self._headers = {"Content-Type": "application/json", "User-Agent": user_agent}
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))
        # The destinations as of commit `_head` (the last one published here), so that most
        # publishes need no record read at all.
        self._known: dict[str, Destination] = {}
        self._head: str | None = None
        self._resolving = threading.Lock()
        self._cond = threading.Condition()
        self._pending: dict[str, _Delivery] = {}  # at most one per destination: the newest
        self._busy: set[str] = set()  # destinations a sender is POSTing to now
        self._senders: dict[str, threading.Thread] = {}  # destination -> the sender serving it
        self._max_senders = max(1, max_senders)
        self._failing: set[str] = set()  # destinations whose last POST did not get through
        self._closing = False
        self._deadline = 0.0

    # -- the listener, on the writer lane ---------------------------------------------------

    def __call__(self, published: Published) -> None:
        """Queue a POST for each destination the push changed; never raises, never blocks on
        the network (a destination record that changed is read from the store)."""
        try:
            targets = self._targets(published)
        except Exception as error:  # a store that cannot be read now: next time, all anew
            self._head = None
            log.warning("not notifying for commit %s: cannot read its destinations (%s)",
                        published.head, error)
            return
        if not targets:
            return
        log.info("commit %s changed destination(s) %s: notifying them", published.head,
                 ", ".join(sorted(targets)))
        now = time.monotonic()
        with self._cond:
            if self._closing:
                log.warning("shutting down: not notifying destination(s) %s of commit %s",
                            ", ".join(sorted(targets)), published.head)
                return
            for name, url in targets.items():
                # replaces a delivery still waiting (an older commit, or its retry)
                self._pending[name] = _Delivery(name, url, published.head, due=now)
            self._start_senders()
            self._cond.notify_all()

    def _targets(self, published: Published) -> dict[str, str]:
        """Destination name -> notify URL, for the destinations with a changed file."""
        with self._resolving:  # the lane calls alone; this keeps `_known` whole regardless
            return self._targets_of(published)

    def _targets_of(self, published: Published) -> dict[str, str]:
        paths = published.paths
        if any(a > b for a, b in itertools.pairwise(paths)):
            paths = tuple(sorted(paths))  # documented sorted; the scans below rely on it
        start = bisect.bisect_left(paths, _RECORDS_PREFIX)
        end = bisect.bisect_left(paths, _RECORDS_PREFIX[:-1] + chr(ord("/") + 1))
        records = paths[start:end]
        now, before = self._destinations(published, records)
        names = changed_destinations(paths, now.values())
        targets = {name: now[name].notify_url for name in names}
        if before:  # a destination that left or moved: its old path changed too
            moved = [d for d in before.values() if d.name not in now or now[d.name].path != d.path]
            for name in changed_destinations(paths, moved) - names:
                targets[name] = (now.get(name) or before[name]).notify_url
        return {name: url for name, url in targets.items() if url is not None}

    def _destinations(
        self, published: Published, records: Iterable[str]
    ) -> tuple[dict[str, Destination], dict[str, Destination]]:
        """The destinations at the published head, and those among them (by name) as they were
        before it where a record changed (moved, left, or changed only their labels or URL)."""
        before: dict[str, Destination] = {}
        now = self._known
        if published.base == self._head:  # follows on from what is known: read what changed
            if records:
                now = dict(self._known)  # copied only when a record changed
                tree = self._tree(published.head)
                for path in records:
                    old = now.pop(path[len(_RECORDS_PREFIX):].removesuffix(".json"), None)
                    if old is not None:
                        before[old.name] = old
                    data = tree.read(path)
                    destination = self._decode(path, data) if data is not None else None
                    if destination is not None:
                        now[destination.name] = destination
        else:  # the first publish, or the branch moved under this service: read them all
            now = self._read_all(published.head)
            if records and published.base is not None:
                changed = {path[len(_RECORDS_PREFIX):].removesuffix(".json") for path in records}
                before = {name: destination for name, destination
                          in self._read_all(published.base).items() if name in changed}
        self._known, self._head = now, published.head
        return now, before

    def _read_all(self, commit: str) -> dict[str, Destination]:
        tree = self._tree(commit)
        found: dict[str, Destination] = {}
        for entry, is_folder in tree.listdir(layout.DESTINATIONS_DIR).items():
            if is_folder or not entry.endswith(".json"):
                continue
            path = f"{layout.DESTINATIONS_DIR}/{entry}"
            data = tree.read(path)
            destination = self._decode(path, data) if data is not None else None
            if destination is not None:
                found[destination.name] = destination
        return found

    @staticmethod
    def _decode(path: str, data: bytes) -> Destination | None:
        try:
            return decode_destination(data)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning("%s: unreadable destination record (%s): not notified", path,
                        type(error).__name__)
            return None

    # -- the senders ------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Nothing pending, nothing being sent (for tests and shutdown)."""
        with self._cond:
            return not self._pending and not self._busy

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Give what is pending one last attempt, for at most `timeout` seconds; then stop."""
        with self._cond:
            if not self._closing:
                self._closing = True
                self._deadline = time.monotonic() + timeout
            self._cond.notify_all()
            senders = list(self._senders.values())
        for thread in senders:
            thread.join(max(0.0, self._deadline - time.monotonic()) + 0.1)
        with self._cond:
            left = sorted(self._pending) + sorted(self._busy)
        if left:
            log.warning("shut down before notifying destination(s) %s", ", ".join(left))

    def _start_senders(self) -> None:
        """A sender for each destination with a delivery and none serving it, while there is
        room (healthy destinations first); called holding `_cond`."""
        waiting = [name for name in self._pending if name not in self._senders]
        waiting.sort(key=lambda name: name in self._failing)
        for name in waiting[:max(0, self._max_senders - len(self._senders))]:
            thread = threading.Thread(target=self._send_loop, args=(name,),
                                      name=f"statewriter-notify-{name}", daemon=True)
            self._senders[name] = thread
            thread.start()

    def _next(self, name: str) -> _Delivery | None:
        """The next delivery to `name` once it is due (waiting for it); None when the sender
        has nothing left to do for its destination (or shutting down is done)."""
        with self._cond:
            while True:
                now = time.monotonic()
                due = self._pending.get(name)
                if due is None or (self._closing and now >= self._deadline):
                    if self._senders.get(name) is threading.current_thread():
                        del self._senders[name]
                    self._start_senders()  # a destination that waited for room
                    return None
                if due.due <= now or self._closing:
                    del self._pending[name]
                    self._busy.add(name)
                    return replace(due, final=True) if self._closing else due
                wait = due.due - now
                if self._closing:
                    wait = min(wait, self._deadline - now)
                self._cond.wait(wait)

    def _send_loop(self, name: str) -> None:
        with httpx.Client(timeout=self._timeout, follow_redirects=False,
                          headers=self._headers) as client:
            while True:
                delivery = self._next(name)
                if delivery is None:
                    return
                retry_in: float | None = None
                delivered = False
                try:
                    retry_in, delivered = self._deliver(client, delivery)
                except Exception:  # a sender never dies
                    log.exception("notifying destination %s of commit %s failed",
                                  delivery.destination, delivery.commit)
                with self._cond:
                    self._busy.discard(name)
                    if delivered:
                        self._failing.discard(name)
                    else:
                        self._failing.add(name)
                    if retry_in is not None and name not in self._pending and not self._closing:
                        self._pending[name] = replace(delivery, attempt=delivery.attempt + 1,
                                                      due=time.monotonic() + retry_in)
                    self._cond.notify_all()

    def _deliver(self, client: httpx.Client, delivery: _Delivery) -> tuple[float | None, bool]:
        """One POST: the seconds to wait before retrying it (None when done with it), and
        whether the receiver took it."""
        name, commit, where = delivery.destination, delivery.commit, origin(delivery.url)
        body = payload(name, commit)
        headers = {}
        if self._token is not None:
            token = self._token.read()
            if token is None:
                self._observe(name, FAILED)
                log.error("not notifying destination %s of commit %s: notify.hmacTokenFile "
                          "holds no token", name, commit)
                return None, False
            headers["X-Signature"] = signature(body, token)
        attempt = delivery.attempt + 1
        try:
            response = client.post(delivery.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            # the message of a transport error names the OS error, not the URL; still, never
            # the path
            problem = f"{type(error).__name__}: {str(error).replace(delivery.url, where)}"
            retryable = isinstance(error, httpx.TransportError)
        else:
            if response.is_success:
                self._observe(name, DELIVERED)
                log.info("notified destination %s of commit %s (%s answered %d, attempt %d)",
                         name, commit, where, response.status_code, attempt)
                return None, True
            problem = f"{where} answered {response.status_code}"
            retryable = response.status_code == 429 or response.status_code >= 500
        if retryable and attempt < self._attempts and not delivery.final:
            self._observe(name, RETRIED)
            delay: float = self._backoff * 2 ** (attempt - 1)
            log.warning("notifying destination %s of commit %s failed (attempt %d of %d): %s; "
                        "retrying in %.1fs", name, commit, attempt, self._attempts, problem, delay,
                        extra={"event": "retry", "reason": "notify", "destination": name,
                               "commit": commit, "attempt": attempt, "retry_in": delay})
            return delay, False
        self._observe(name, FAILED)
        if retryable:
            log.error("gave up notifying destination %s of commit %s after %d attempt(s): %s%s",
                      name, commit, attempt, problem, " (shutting down)" if delivery.final else "")
        else:
            log.error("notifying destination %s of commit %s was refused: %s (not retried; "
                      "check the Receiver, its type and its token)", name, commit, problem)
        return None, False
