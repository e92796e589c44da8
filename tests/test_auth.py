"""Password hashing and HTTP Basic authentication."""
import base64
import re

import pytest

from jobjoker import auth, models, roles
from jobjoker.throttle import Throttle, Throttled
from tests.support import ROOT


def basic(user, password):
    return auth.Credentials(authorization="Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode(), address="10.0.0.1")


def test_hashes_use_scrypt_at_owasp_cost_and_are_salted(monkeypatch):
    monkeypatch.setattr(auth, "SCRYPT_N", 2 ** 15)  # undo the test suite's cheap hashes
    monkeypatch.setattr(auth, "SCRYPT_P", 3)
    first = auth.hash_password("pw")
    scheme, n, r, p, salt, digest = first.split("$")
    assert (scheme, n, r, p) == ("scrypt", "32768", "8", "3")
    assert first != auth.hash_password("pw")
    assert auth.verify_password("pw", first)
    assert not auth.verify_password("pW", first)


@pytest.mark.parametrize("stored", ["", "plain", "scrypt$x$8$1$AA==$AA==", "md5$1$2$3$4$5"])
def test_malformed_hashes_never_verify(stored):
    assert not auth.verify_password("anything", stored)


@pytest.mark.parametrize("header, expected", [
    (basic("admin", "p:w").authorization, ("admin", "p:w")),
    ("basic " + base64.b64encode(b"a:b").decode(), ("a", "b")),
    ("Bearer abc", None), ("Basic !!!", None), ("Basic " + base64.b64encode(b"nocolon")
                                                 .decode(), None), (None, None), ("", None),
])
def test_parse_basic(header, expected):
    assert auth.parse_basic(header) == expected


@pytest.mark.gen_test
async def test_authenticate(storage):
    assert await auth.ensure_admin(storage, "secret") == ("secret", False)
    assert await auth.ensure_admin(storage, "other") is None  # only when no user exists
    authenticator = auth.Authenticator(storage)
    identity = await authenticator.authenticate(basic("admin", "secret"))
    assert identity == auth.Identity("admin", "admin", "basic")
    assert await authenticator.authenticate(basic("admin", "secret")) == identity  # memo
    assert await authenticator.authenticate(basic("admin", "wrong")) is None
    assert await authenticator.authenticate(basic("nobody", "secret")) is None
    assert await authenticator.authenticate(auth.Credentials()) is None
    models.User.update(disabled=True).execute()
    assert await authenticator.authenticate(basic("admin", "secret")) is None


@pytest.mark.gen_test
async def test_a_password_change_invalidates_the_memo(storage):
    await auth.ensure_admin(storage, "old")
    authenticator = auth.Authenticator(storage)
    assert await authenticator.authenticate(basic("admin", "old"))
    models.User.update(password_hash=auth.hash_password("new")).execute()
    assert await authenticator.authenticate(basic("admin", "old")) is None
    assert await authenticator.authenticate(basic("admin", "new"))


@pytest.mark.gen_test
async def test_a_generated_admin_password_is_random_and_stored_hashed(storage):
    password, generated = await auth.ensure_admin(storage, None)
    assert generated and len(password) >= 16
    stored = models.User.get_by_id("admin").password_hash
    assert password not in stored and auth.verify_password(password, stored)


def test_throttle_counts_per_account_and_per_address_in_a_window():
    now = [1000.0]
    throttle = Throttle(per_account=3, per_address=5, window=60, clock=lambda: now[0])
    for _ in range(3):
        throttle.check("ann", "1.1.1.1")
        throttle.fail("ann", "1.1.1.1")
    with pytest.raises(Throttled) as caught:
        throttle.check("ann", "2.2.2.2")  # the account is locked, from anywhere
    assert 1 <= caught.value.retry_after <= 61
    throttle.check("bob", "2.2.2.2")  # other accounts are not
    for name in ("bob", "cy"):
        throttle.fail(name, "1.1.1.1")
    with pytest.raises(Throttled):
        throttle.check("dan", "1.1.1.1")  # the address is locked, for any account
    now[0] += 61
    throttle.check("ann", "1.1.1.1")  # the window has passed
    throttle.fail("ann", "3.3.3.3")
    throttle.succeed("ann")
    throttle.check("ann", "3.3.3.3")


def test_roles_are_ordered_and_say_what_they_allow():
    assert [r for r in roles.ROLES] == ["viewer", "operator", "admin"]
    assert roles.allows("viewer", "read") and not roles.allows("viewer", "run")
    assert roles.allows("operator", "run") and not roles.allows("operator", "admin")
    assert roles.allows("admin", "admin")
    assert not roles.allows("nobody", "read")
    assert roles.lower_role("admin", "viewer") == "viewer"
    assert roles.outranks("admin", "operator") and not roles.outranks("viewer", "viewer")


def test_the_page_orders_the_roles_as_the_server_does():
    # The page hides what a role may not do (cosmetic; the server decides): its list must be
    # the server's, in the same order.
    source = (ROOT / "static" / "js" / "roles.js").read_text()
    listed = re.search(r"export const ROLES = \[([^\]]*)\]", source).group(1)
    assert tuple(re.findall(r'"(\w+)"', listed)) == roles.ROLES


@pytest.mark.parametrize("header, expected", [
    ("Bearer jj_abc_secret", ("abc", "secret")), ("bearer jj_abc_se_cret", ("abc", "se_cret")),
    ("Bearer abc", None), ("Bearer jj_abc", None), ("Bearer jj__x", None), ("Basic x", None),
])
def test_parse_bearer(header, expected):
    assert auth.parse_bearer(header) == expected


def test_the_throttle_forgets_made_up_names_once_their_window_has_passed():
    now = [1000.0]
    throttle = Throttle(per_account=3, per_address=10 ** 9, window=60,
                             clock=lambda: now[0])
    for i in range(3000):
        throttle.fail("made-up-%d" % i, "10.0.0.1")
        now[0] += 0.1  # 300 s in all: most of them are long out of their window
    assert len(throttle._failures) < 2100, len(throttle._failures)
    with pytest.raises(Throttled):  # those in the window still count
        for _ in range(3):
            throttle.fail("made-up-2999", None)
        throttle.check("made-up-2999", None)
