"""The pure half of previews: the Cap'n Proto escaper and the config renderers."""

import json
import re

import pytest

from preview_runtime import capnp
from preview_runtime.render import (
    DurableObjectClass,
    Module,
    WorkerConfigInvalid,
    WorkerPaths,
    WorkerSpec,
    render_worker,
)

PATHS = WorkerPaths(
    control_socket="/state/control.sock",
    durable_objects="/state/do/7",
    assets="/state/workers/7/v1/assets",
)


def unquote(literal: str) -> str:
    """Read a Cap'n Proto text literal back, the way its grammar defines it."""
    assert literal.startswith('"') and literal.endswith('"')
    body = literal[1:-1]
    simple = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
    out, i = [], 0
    while i < len(body):
        char = body[i]
        assert char != '"', "an unescaped quote ends the literal early"
        assert char not in "\n\r", "a raw line break inside a literal"
        if char != "\\":
            out.append(char)
            i += 1
        elif body[i + 1] == "x":
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
        else:
            out.append(simple[body[i + 1]])
            i += 2
    return "".join(out)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain",
        'say "hi"',
        "back\\slash\\",
        "line\nbreak\r\ttab",
        "nul\x00 bell\x07 del\x7f",
        "café ☕ 日本",
        '"); (name = "evil", text = "x',
        "\\u00e9 stays literal",
    ],
)
def test_text_round_trips_and_cannot_break_out(value):
    literal = capnp.text(value)
    assert unquote(literal) == value
    assert "\\u" not in literal.replace("\\\\", "")  # workerd rejects \u escapes


def test_text_writes_non_ascii_as_raw_utf8_and_replaces_lone_surrogates():
    assert capnp.text("é") == '"é"'
    assert capnp.text("a\ud800b") == '"a\ufffdb"'
    capnp.text("a\ud800b").encode()  # always encodable


def test_json_text_is_compact_utf8_json():
    literal = capnp.json_text({"k": "é\n", "n": [1, True, None]})
    assert json.loads(unquote(literal)) == {"k": "é\n", "n": [1, True, None]}
    assert "\\u00e9" not in literal


def spec(**overrides) -> WorkerSpec:
    values = {
        "script_name": "app",
        "version_id": "v-1",
        "version_created": "2026-11-28T10:00:00+00:00",
        "compatibility_date": "2026-06-01",
        "compatibility_flags": ("nodejs_compat",),
        "modules": (
            Module("index.js", "application/javascript+module", b"export default {}"),
            Module("./abc-hello.txt", "text/plain", b"hello"),
            Module("index.js.map", "application/source-map", b"{}"),
            Module("lib.cjs", "application/javascript", b"module.exports = 1"),
            Module("blob.bin", "application/octet-stream", b"\x00\x01"),
            Module("add.wasm", "application/wasm", b"\x00asm"),
        ),
        "bindings": (),
        "binding_token": "tok-secret",
    }
    values.update(overrides)
    return WorkerSpec(**values)


def app_section(config: str) -> str:
    start = config.index('(name = "app", worker')
    return config[start : config.index("globalOutbound", start)]


def test_modules_are_embedded_by_index_in_order_with_their_kinds():
    rendered = render_worker(spec(), paths=PATHS, heap_mb=128)
    app = app_section(rendered.config)
    kinds = re.findall(r'\(name = ("[^"]*"), (\w+) = embed "modules/(\d)"\)', app)
    assert kinds == [
        ('"index.js"', "esModule", "0"),
        ('"./abc-hello.txt"', "text", "1"),
        ('"lib.cjs"', "commonJsModule", "2"),
        ('"blob.bin"', "data", "3"),
        ('"add.wasm"', "wasm", "4"),
    ]
    assert rendered.files["modules/0"] == b"export default {}"
    assert rendered.files["modules/4"] == b"\x00asm"
    assert len(rendered.files) == 5  # the source map is not embedded
    assert 'compatibilityDate = "2026-06-01"' in app
    assert 'compatibilityFlags = ["nodejs_compat"]' in app


def test_a_module_type_previews_cannot_run_is_a_10021_error():
    bad = spec(modules=(Module("main.py", "text/x-python", b"print(1)"),))
    with pytest.raises(WorkerConfigInvalid) as caught:
        render_worker(bad, paths=PATHS, heap_mb=128)
    assert caught.value.code == 10021
    assert "main.py" in caught.value.message


def test_every_worker_has_the_outbound_deny_and_the_heap_cap():
    config = render_worker(spec(), paths=PATHS, heap_mb=96).config
    workers = config.count("worker = (")
    assert workers == config.count('globalOutbound = "outbound"') == 5
    assert '(name = "internet", network = (allow = []))' in config
    assert 'v8Flags = ["--max-old-space-size=96"]' in config
    assert '(name = "http", http = (), service = "app")' in config
    assert '(name = "admin", http = (), service = "trigger")' in config
    assert "address" not in config.split("sockets = ")[1]  # sockets come as fds


def test_value_bindings_and_resource_bindings_reach_the_bridge_with_props():
    bindings = (
        {"name": "GREETING", "type": "plain_text", "text": 'hi "there"'},
        {"name": "LIMITS", "type": "json", "json": {"max": 3, "name": "é"}},
        {"name": "API_KEY", "type": "secret_text", "text": "s3cret"},
        {"name": "CACHE", "type": "kv_namespace", "namespace_id": "ns1"},
        {"name": "DB", "type": "d1", "id": "db-uuid"},
        {"name": "JOBS", "type": "queue", "queue_name": "jobs"},
        {"name": "VM", "type": "version_metadata"},
    )
    app = app_section(
        render_worker(spec(bindings=bindings), paths=PATHS, heap_mb=1).config
    )
    assert '(name = "GREETING", text = "hi \\"there\\"")' in app
    assert '(name = "API_KEY", text = "s3cret")' in app
    limits = re.search(r'\(name = "LIMITS", json = ("(?:[^"\\]|\\.)*")\)', app)
    assert json.loads(unquote(limits.group(1))) == {"max": 3, "name": "é"}
    props = {}
    for name in ("CACHE", "DB", "JOBS"):
        after = app[app.index(f'(name = "{name}", ') :]
        raw = re.search(r'props = \(json = ("(?:[^"\\]|\\.)*")\)', after).group(1)
        props[name] = json.loads(unquote(raw))
    assert props == {
        "CACHE": {"kind": "kv", "id": "ns1", "token": "tok-secret"},
        "DB": {"kind": "d1", "id": "db-uuid", "token": "tok-secret"},
        "JOBS": {"kind": "queue", "id": "jobs", "token": "tok-secret"},
    }
    assert 'kvNamespace = (name = "bridge"' in app
    assert 'moduleName = "cloudflare-internal:d1-api"' in app
    assert 'queue = (name = "bridge"' in app
    version = re.search(r'\(name = "VM", json = ("(?:[^"\\]|\\.)*")\)', app)
    assert json.loads(unquote(version.group(1)))["id"] == "v-1"


def test_unsupported_bindings_start_but_fail_when_called():
    bindings = (
        {"name": "AI", "type": "ai"},
        {"name": "FILES", "type": "r2_bucket", "bucket_name": "b"},
        {
            "name": "OTHER",
            "type": "durable_object_namespace",
            "class_name": "X",
            "script_name": "elsewhere",
        },
        {"name": "SVC", "type": "service", "service": "not-here"},
        {"name": "ASSETS", "type": "assets"},  # no assets were uploaded
    )
    app = app_section(
        render_worker(spec(bindings=bindings), paths=PATHS, heap_mb=1).config
    )
    for name, kind in [
        ("AI", "ai"),
        ("FILES", "r2_bucket"),
        ("SVC", "service"),
        ("OTHER", "durable_object_namespace"),
        ("ASSETS", "assets"),
    ]:
        assert (
            f'(name = "{name}", wrapped = (moduleName = "claimportal:unsupported", '
            f'innerBindings = [(name = "binding", text = "{name}"), '
            f'(name = "type", text = "{kind}")'
        ) in app


def test_durable_objects_get_sqlite_storage_on_the_runtime_disk():
    rendered = render_worker(
        spec(
            bindings=(
                {
                    "name": "COUNTER",
                    "type": "durable_object_namespace",
                    "class_name": "Counter",
                    "script_name": "app",
                },
            ),
            durable_objects=(
                DurableObjectClass("Counter", "ns-abc", True),
                DurableObjectClass("Legacy", "ns-def", False),
            ),
        ),
        paths=PATHS,
        heap_mb=1,
    )
    config = rendered.config
    assert 'durableObjectNamespace = (className = "Counter")' in config
    assert (
        'durableObjectNamespaces = [(className = "Counter", uniqueKey = "ns-abc", '
        'enableSql = true), (className = "Legacy", uniqueKey = "ns-def", '
        'enableSql = false)], durableObjectStorage = (localDisk = "do-disk")'
    ) in config
    assert (
        '(name = "do-disk", disk = (path = "/state/do/7", writable = true))' in config
    )


def test_assets_front_the_worker_with_the_uploaded_rules():
    assets = {
        "html_handling": "auto-trailing-slash",
        "not_found_handling": "single-page-application",
        "run_worker_first": ["/api/*"],
        "_headers": "/*\n  X-Frame-Options: DENY\n",
        "_redirects": "/old /new 301\n",
    }
    config = render_worker(
        spec(assets_config=assets, bindings=({"name": "ASSETS", "type": "assets"},)),
        paths=PATHS,
        heap_mb=1,
    ).config
    assert (
        '(name = "ASSETS", service = (name = "assets", entrypoint = "AssetWorker"))'
        in config
    )
    assert '(name = "http", http = (), service = "assets")' in config
    found = re.search(
        r'\(name = "assets", assets = \(path = "/state/workers/7/v1/assets", '
        r'config = ("(?:[^"\\]|\\.)*"), userWorker = "app"\)\)',
        config,
    )
    assert json.loads(unquote(found.group(1))) == {
        "html_handling": "auto-trailing-slash",
        "not_found_handling": "single-page-application",
        "run_worker_first": ["/api/*"],
        "headers": "/*\n  X-Frame-Options: DENY\n",
        "redirects": "/old /new 301\n",
    }


def test_an_assets_only_site_has_no_user_worker():
    config = render_worker(
        spec(modules=(), assets_config={}), paths=PATHS, heap_mb=1
    ).config
    assert '(name = "app"' not in config
    assert "userWorker" not in config
    assert (
        'compatibilityDate = "2026-06-01", compatibilityFlags = ["nodejs_compat"]'
        in config
    )
    with pytest.raises(WorkerConfigInvalid):
        render_worker(spec(modules=()), paths=PATHS, heap_mb=1)


def test_hostile_names_stay_inside_their_literals():
    evil = '"), (name = "x", external = (address = "1.2.3.4:80'
    config = render_worker(
        spec(
            modules=(Module(evil, "application/javascript+module", b""),),
            bindings=({"name": evil, "type": "plain_text", "text": evil},),
            compatibility_flags=(evil,),
        ),
        paths=PATHS,
        heap_mb=1,
    ).config
    outside_literals = re.sub(r'"(?:[^"\\]|\\.)*"', '""', config)
    assert "1.2.3.4" not in outside_literals
    assert outside_literals.count("external = (") == 1  # only our control socket


BANNER = '<div role="note">Unclaimed "preview"\n · <a href="/r">report</a></div>'


def socket_service(config: str) -> str:
    return re.search(r'\(name = "http", http = \(\), service = "(\w+)"\)', config)[1]


def test_an_unclaimed_module_worker_gets_the_banner_in_its_own_isolate():
    config = render_worker(spec(), paths=PATHS, heap_mb=128, banner=BANNER).config
    app = app_section(config)
    main = re.search(
        r'modules = \[\(name = "([^"]+)", esModule = ("(?:[^"\\]|\\.)*")\)', app
    )
    assert main[1] == "claimportal-banner-main.js"  # first: the main module
    source = unquote(main[2])
    assert 'import * as worker from "./index.js";' in source
    assert 'export * from "./index.js";' in source
    banner = re.search(r"wrapHandler\(worker\.default, (.*)\);", source)[1]
    assert json.loads(banner) == BANNER
    assert socket_service(config) == "app"  # no Worker in between
    assert '(name = "banner"' not in config
    assert '(name = "claimportal:banner", esModule = embed "/js/banner.js")' in config


def test_claimed_workers_run_as_uploaded():
    config = render_worker(spec(), paths=PATHS, heap_mb=128).config
    assert "claimportal-banner-main.js" not in config
    assert '(name = "banner"' not in config
    assert socket_service(config) == "app"


@pytest.mark.parametrize(
    "overrides",
    [
        {"assets_config": {}},  # the assets service answers before the Worker
        {
            "service_worker": True,
            "modules": (Module("w.js", "application/javascript", b"x"),),
        },
        {"modules": (Module("a b?.js", "application/javascript+module", b"x"),)},
    ],
)
def test_other_unclaimed_workers_get_an_entry_worker_in_front(overrides):
    config = render_worker(
        spec(**overrides), paths=PATHS, heap_mb=128, banner=BANNER
    ).config
    assert "claimportal-banner-main.js" not in config
    assert socket_service(config) == "banner"
    entry = config[config.index('(name = "banner", worker') :]
    text = re.search(r'\(name = "BANNER", text = ("(?:[^"\\]|\\.)*")\)', entry)[1]
    assert unquote(text) == BANNER
    front = "assets" if "assets_config" in overrides else "app"
    assert f'(name = "TARGET", service = "{front}")' in entry


def test_service_worker_parts_are_bound_as_globals():
    rendered = render_worker(
        spec(
            service_worker=True,
            modules=(
                Module("worker.js", "application/javascript", b"addEventListener()"),
                Module("wasm", "application/wasm", b"\x00asm"),
            ),
            bindings=(
                {"name": "WASM", "type": "wasm_module", "part": "wasm"},
                {"name": "AI", "type": "ai"},
            ),
        ),
        paths=PATHS,
        heap_mb=1,
    )
    app = app_section(rendered.config)
    assert 'serviceWorkerScript = embed "modules/0"' in app
    assert '(name = "WASM", wasmModule = embed "modules/1")' in app
    assert '(name = "AI", service = "unsupported")' in app
    assert rendered.files["modules/1"] == b"\x00asm"
