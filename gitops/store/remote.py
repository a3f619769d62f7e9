"""The remote store: a bare cache clone under the data folder, published by push."""

from __future__ import annotations

import base64
import os
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

from gitops.errors import RateLimited, StoreUnavailable
from gitops.git.process import ASKPASS_SCRIPT, Askpass, environment, run_git, with_password
from gitops.redact import redact
from gitops.store.base import DEFAULT_BRANCH
from gitops.store.objects import Repository, check_sha
from gitops.store.reads import GitReads

# git's words for credentials the remote refused (an installation token may be revoked early;
# not 403, which GitHub answers for a token without the permission: a new one would not help)
_REFUSED = ("Authentication failed", "returned error: 401", "Invalid username or password")
# How git reports an HTTP 429 ("too many requests", GitHub's secondary rate limits): curl's
# "The requested URL returned error: 429", or "RPC failed; HTTP 429".
_TOO_MANY = re.compile(r"\b(?:error:|HTTP) 429\b")
# Rejections that mean "the branch is not where you expected": the caller refreshes.
_MOVED = ("stale info", "fetch first", "non-fast-forward", "already exists", "cannot lock ref",
          "incorrect old value", "failed to update ref")


class TokenSource(Protocol):
    """Tokens that change while the store runs (gitops.store.githubapp's installation
    tokens): asked for one each time a git process needs credentials."""

    def token(self) -> str:
        """A token good for one fetch or push; raises StoreUnavailable (one line, no secret)."""
        ...

    def forget(self, token: str) -> None:
        """The remote refused `token`: do not hand it out again."""
        ...

    def secrets(self) -> list[str]:
        """Every form of the tokens handed out lately, for `redact`."""
        ...


@dataclass(frozen=True)
class Credentials:
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssh_key_file: Path | None = None
    known_hosts_file: Path | None = None
    # the password of `username`, asked for at each fetch and push
    token_source: TokenSource | None = field(default=None, repr=False, compare=False)

    def secret(self) -> str | None:
        return self.token or self.password


def _split_userinfo(url: str, credentials: Credentials | None) -> tuple[str, Credentials | None]:
    """Move userinfo out of an http(s) URL into credentials so it never reaches git config
    (a lone user name may itself be a token, as some forges allow)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        return url, credentials
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    clean = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    credentials = credentials or Credentials()
    return clean, replace(
        credentials,
        username=credentials.username or user,
        password=credentials.password if credentials.secret() or credentials.token_source
        else password,
    )


class RemoteStore(Repository, GitReads):
    def __init__(
        self,
        url: str,
        data: Path,
        branch: str = DEFAULT_BRANCH,
        credentials: Credentials | None = None,
        timeout: float = 60.0,  # push.timeout (docs/reference.md section 8)
    ) -> None:
        data.mkdir(parents=True, exist_ok=True)
        self.url, self._credentials = _split_userinfo(url, credentials)
        self._timeout = timeout
        self._secrets = self._secret_forms()
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.username and not parts.password:
            self._secrets.append(unquote(parts.username))  # a user name alone is a token
        Repository.__init__(self, data / "cache.git", branch, self._network_env(data))
        GitReads.__init__(self, data / "cache.git")
        self._ref = f"refs/heads/{branch}"
        self._tracking = f"refs/remotes/origin/{branch}"
        self.git("config", "remote.origin.url", self.url)
        self.git("config", "remote.origin.fetch", f"+{self._ref}:{self._tracking}")
        self._lock = threading.Lock()
        self._tip = self.read_ref(self._tracking)

    def _secret_forms(self) -> list[str]:
        creds = self._credentials
        if creds is None:
            return []
        secret = creds.secret()
        if not secret:
            return []
        basic = f"{creds.username or 'git'}:{secret}".encode()
        return [secret, base64.b64encode(basic).decode()]

    def _network_env(self, data: Path) -> dict[str, str]:
        creds = self._credentials or Credentials()
        secret = creds.secret()
        askpass = None
        if secret or creds.username or creds.token_source:
            askpass = Askpass(self._askpass_script(data), creds.username or "git", secret or "")
        ssh = None
        if creds.ssh_key_file or creds.known_hosts_file:
            ssh = ["ssh", "-o", "BatchMode=yes"]
            if creds.ssh_key_file:
                ssh += ["-i", str(creds.ssh_key_file), "-o", "IdentitiesOnly=yes"]
            if creds.known_hosts_file:
                ssh += ["-o", f"UserKnownHostsFile={creds.known_hosts_file}",
                        "-o", "StrictHostKeyChecking=yes"]
        # No credential helper from the user's config may see (or store) our secret.
        return environment(config={"credential.helper": ""}, askpass=askpass, ssh_command=ssh)

    @staticmethod
    def _askpass_script(data: Path) -> Path:
        """The askpass script in the data folder, (re)written when it is not ASKPASS_SCRIPT."""
        askpass = data / "askpass.sh"
        if not askpass.exists() or askpass.read_text() != ASKPASS_SCRIPT:
            tmp = data / "askpass.sh.tmp"
            tmp.write_text(ASKPASS_SCRIPT)
            tmp.chmod(0o700)
            os.replace(tmp, askpass)
        return askpass

    def _token_source(self) -> TokenSource | None:
        return self._credentials.token_source if self._credentials else None

    def _all_secrets(self) -> list[str]:
        """The fixed secrets and every form of the tokens a token source handed out lately."""
        source = self._token_source()
        return self._secrets + source.secrets() if source else self._secrets

    def _network(self, *args: str) -> tuple[int, str, str]:
        """Run a git command that talks to the remote; a token source's current token is
        its password, in this process's environment only (askpass reads it)."""
        env, token, source = self._env, None, self._token_source()
        try:
            if source is not None:
                token = source.token()
                env = with_password(env, token)
            proc = run_git([f"--git-dir={self.path}", *args], env, timeout=self._timeout)
        except StoreUnavailable as e:
            raise type(e)(redact(e.message, self._all_secrets())) from None
        err = redact(proc.stderr.decode(errors="replace"), self._all_secrets()).strip()
        if proc.returncode != 0 and source is not None and token is not None \
                and any(word in err for word in _REFUSED):
            source.forget(token)
        return proc.returncode, proc.stdout.decode(errors="replace"), err

    def _unavailable(self, what: str, detail: str) -> StoreUnavailable:
        message = redact(f"{what} {self.url} failed: {detail}", self._all_secrets())
        if _TOO_MANY.search(detail):
            return RateLimited(f"{message} (the remote asks to slow down)")
        return StoreUnavailable(message)

    def for_branch(self, branch: str) -> RemoteStore:
        """The same remote, written on another branch (through a cache of its own)."""
        return RemoteStore(self.url, self.path.parent / f"{branch}.cache", branch,
                           self._credentials, timeout=self._timeout)

    def tip(self) -> str | None:
        with self._lock:
            return self._tip

    def refresh(self) -> str | None:
        code, _, err = self._network(
            "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "origin",
            f"+{self._ref}:{self._tracking}",
        )
        if code != 0:
            if "couldn't find remote ref" not in err:
                raise self._unavailable("fetch from", err)
            self.git("update-ref", "-d", self._tracking)  # the branch is gone (or never was)
        tip = self.read_ref(self._tracking)
        with self._lock:
            self._tip = tip
        return tip

    def publish(self, expected: str | None, new: str) -> bool:
        """Push `new` only if the remote branch is still at `expected` (force-with-lease)."""
        check_sha(new)
        return self.publish_staged(lambda: self._push(expected, new))

    def _push(self, expected: str | None, new: str) -> bool:
        lease = check_sha(expected) if expected is not None else ""
        code, out, err = self._network(
            "push", "--porcelain", "--no-verify", f"--force-with-lease={self._ref}:{lease}",
            "origin", f"{new}:{self._ref}",
        )
        status = [line for line in out.splitlines() if f":{self._ref}\t" in line]
        if not status:
            raise self._unavailable("push to", err or f"exit status {code}")
        flag, _, summary = status[0].split("\t", 2)
        if flag == "!":
            if any(reason in summary for reason in _MOVED):
                return False
            raise self._unavailable("push to", f"{summary} {err}".strip())
        self.git("update-ref", "--stdin",
                 input=f"update {self._ref} {new}\nupdate {self._tracking} {new}\n".encode())
        with self._lock:
            self._tip = new
        return True
