"""A staging rollback lists what it rolled back from, and `images.sh revoke` revokes exactly that.

Drives the generated deploy scripts with the fake CLIs of tests/test_deploy_scripts.py (the
`run` fixture): a failed deploy that rolls back and a manual rollback each write the images
they left to ROLLED_BACK_FROM; `deploy/images.sh revoke` then tags each of those digests
`revoked-<environment>-<hex>` in the fake registry, and no other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import test_deploy_scripts as scripts
from tests.test_deploy_scripts import (
    COMPOSE,
    COMPOSE_ENV,
    DIGEST,
    OLD,
    REPO,
    Run,
    Runner,
    compose_state,
)

# The fixture that runs a generated script with the fake CLIs on PATH.
run = scripts.run


def _revoked(state: dict[str, Any], environment: str) -> set[str]:
    """`repository@digest` of every revoked-<environment>- tag in the fake registry."""
    prefix = f":revoked-{environment}-"
    return {
        f"{ref.split(prefix)[0]}@sha256:{ref.split(prefix)[1]}"
        for ref in state.get("registry", {})
        if prefix in ref
    }


def _revoke(run: Runner, example: str, environment: str, listed: str, state: dict[str, Any]) -> Run:
    """Run `images.sh revoke` on a file holding `listed`, with the fakes' state."""
    env = {"ROLLED_BACK_FROM_TEXT": listed}
    script = f'printf "%s" "$ROLLED_BACK_FROM_TEXT" >rb.env && deploy/images.sh revoke {environment} rb.env'
    return run(example, ["-c", script], env, {**state, "knobs": {}})


def test_compose_failed_deploy_lists_and_revokes_the_failed_digest(
    run: Runner, tmp_path: Path
) -> None:
    listed = tmp_path / "rolled-back.env"
    env = {**COMPOSE_ENV, "ROLLED_BACK_FROM": str(listed)}
    r = run(COMPOSE, ["deploy/compose.sh", "deploy", "staging"], env, compose_state(up_fail=True))
    assert r.code != 0
    assert r.state["running"] == {"api": f"{REPO}@{OLD}", "notifier": f"{REPO}@{OLD}"}
    assert listed.read_text() == f"IMAGE_API={REPO}@{DIGEST}\n"
    revoke = _revoke(run, COMPOSE, "staging", listed.read_text(), r.state)
    assert revoke.code == 0, revoke.stderr
    assert _revoked(revoke.state, "staging") == {f"{REPO}@{DIGEST}"}


def test_compose_healthy_deploy_lists_nothing(run: Runner, tmp_path: Path) -> None:
    listed = tmp_path / "rolled-back.env"
    env = {**COMPOSE_ENV, "ROLLED_BACK_FROM": str(listed)}
    r = run(COMPOSE, ["deploy/compose.sh", "deploy", "staging"], env, compose_state())
    assert r.code == 0, r.stderr
    assert not listed.exists()


def test_compose_manual_rollback_lists_and_revokes_the_verified_digest_it_left(
    run: Runner, tmp_path: Path
) -> None:
    v1, v2 = f"{REPO}@{OLD}", f"{REPO}@sha256:{'2' * 64}"
    state = compose_state()
    state["running"] = {"api": v2, "notifier": v2}
    state["tags"] = {
        f"shipforge-{kind}/tickets/{s}:staging": ref
        for s in ("api", "notifier")
        for kind, ref in (("rollback", v1), ("verified", v2))
    }
    listed = tmp_path / "rolled-back.env"
    env = {k: v for k, v in COMPOSE_ENV.items() if k not in ("GIT_SHA", "IMAGE_API")}
    r = run(
        COMPOSE,
        ["deploy/compose.sh", "rollback", "staging"],
        {**env, "ROLLED_BACK_FROM": str(listed)},
        state,
    )
    assert r.code == 0, r.stderr
    assert r.state["running"] == {"api": v1, "notifier": v1}
    # Two services ran v2 (one image): it is listed once.
    assert listed.read_text() == f"IMAGE_API={v2}\n"
    revoke = _revoke(run, COMPOSE, "staging", listed.read_text(), r.state)
    assert revoke.code == 0, revoke.stderr
    assert _revoked(revoke.state, "staging") == {v2}
