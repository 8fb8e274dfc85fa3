from accounts import tokens


def test_hash_is_stable_hex_and_hides_the_secret():
    secret = tokens.new_api_token()
    digest = tokens.hash_secret(secret)
    assert digest == tokens.hash_secret(secret)
    assert len(digest) == 64
    int(digest, 16)
    assert secret not in digest


def test_api_tokens_fit_in_an_http_header_and_carry_enough_randomness():
    secret = tokens.new_api_token()
    assert secret.startswith(tokens.API_TOKEN_PREFIX)
    assert all(ord(ch) <= 255 for ch in secret)
    assert len(secret) >= len(tokens.API_TOKEN_PREFIX) + 43  # 32 bytes, base64url
    assert len({tokens.new_api_token() for _ in range(100)}) == 100


def test_claim_keys_are_url_safe():
    key = tokens.new_claim_key()
    assert len(key) >= 43
    assert set(key) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )


def test_origin_hash_depends_on_the_key():
    a = tokens.keyed_origin_hash("203.0.113.9", key="one")
    assert a == tokens.keyed_origin_hash("203.0.113.9", key="one")
    assert a != tokens.keyed_origin_hash("203.0.113.9", key="two")
    assert "203.0.113.9" not in a
