"""What a Worker upload declares (PUT script, POST versions; spec 4.9-4.10):
the ``metadata`` part with its bindings, one declaration per binding type, and
its Durable Object migrations. The API reads them here into a
``workers.WorkerUpload``; the services never see the metadata's wire shape.

A refused metadata part answers 10021, whose message wrangler prints; a
refused migration 10079."""

from dataclasses import replace
from typing import Any

from django.conf import settings

from accounts.exceptions import InvalidInput
from accounts.services import workers
from accounts.services.bindings import (
    NAME_MAX_LENGTH,
    SECRET_TYPES,
    ClassMove,
    MigrationInvalid,
    Migrations,
    MigrationStep,
    NewBinding,
)

from .inputs import (
    JSON,
    Boolean,
    Field,
    Input,
    Integer,
    JSONObject,
    ListOf,
    Nested,
    Schema,
    Text,
)
from .kit import FormBody, JSONPartForm

ANNOTATIONS_MAX_BYTES = 64 * 1024
SHOWN_MAX_BYTES = 16 * 1024


def _request_limit() -> int:
    # A secret's own limit (CLAIMPORTAL_MAX_SECRET_BYTES) is the service's, a 413.
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


# --- secrets (also what the secrets endpoints take) --------------------------------


class SecretBinding(Input):
    """A secret: a secret_text's text, or a secret_key's key material."""

    type = Text(choices=tuple(sorted(SECRET_TYPES)), default="secret_text")
    name = Text(max_length=255, description="The secret's name, when not the key.")
    text = Text(blank=True, max_length=_request_limit, description="secret_text.")
    format = Text(max_length=32, description="secret_key: raw, pkcs8, spki or jwk.")
    algorithm = JSON(max_bytes=4096, description="secret_key: as WebCrypto takes it.")
    usages = ListOf(Text(max_length=32), max_items=16, description="secret_key.")
    key_base64 = Text(max_length=_request_limit, description="secret_key.")
    key_jwk = JSONObject(max_bytes=64 * 1024, description="secret_key.")

    def key_material(self) -> dict[str, Any]:
        """A secret_key's fields as sent (its format, algorithm, key ...)."""
        return {
            name: value
            for name, value in self.present().items()
            if name not in ("name", "type", "text")
        }

    def new_secret(self) -> workers.NewSecret:
        return workers.NewSecret(
            type=self.type, text=self.text, key=self.key_material()
        )


class NamedSecret(SecretBinding):
    name = Text(required=True, max_length=255)


# --- bindings, one declaration per type --------------------------------------------


def _name(**kwargs: Any) -> Text:
    return Text(max_length=NAME_MAX_LENGTH, **kwargs)


def _binding_input(kind: str, doc: str, **fields: Field) -> type[Input]:
    """The declaration of one binding type: its name, its type and the fields
    it takes. Fields wrangler sends that are not listed are not kept."""
    namespace: dict[str, Any] = {
        "__doc__": doc,
        "fields": {},
        "unknown": "ignore",
        "name": _name(required=True, description="The name the Worker reads."),
        "type": Text(required=True, choices=(kind,)),
        **fields,
    }
    title = "".join(word.title() for word in kind.split("_"))
    return type(f"{title}Binding", (Input,), namespace)


class UploadedSecret(NamedSecret):
    unknown = "ignore"


BINDING_TYPES: dict[str, type[Input]] = {
    "secret_text": UploadedSecret,
    "secret_key": UploadedSecret,
    "plain_text": _binding_input(
        "plain_text",
        "A text var.",
        text=Text(required=True, blank=True, max_length=_request_limit),
    ),
    "json": _binding_input(
        "json", "A JSON var.", json=JSON(required=True, max_bytes=1024 * 1024)
    ),
    "kv_namespace": _binding_input(
        "kv_namespace", "A KV namespace.", namespace_id=_name(required=True)
    ),
    # A missing or unknown id gets the message wrangler explains (spec 4.9).
    "d1": _binding_input("d1", "A D1 database (its uuid).", id=_name()),
    "queue": _binding_input(
        "queue",
        "A queue producer.",
        queue_name=_name(required=True),
        delivery_delay=Integer(maximum=86_400),
    ),
    "durable_object_namespace": _binding_input(
        "durable_object_namespace",
        "A Durable Object class of this Worker, or of 'script_name'.",
        class_name=_name(required=True),
        script_name=_name(),
        environment=_name(),
    ),
    "service": _binding_input(
        "service",
        "Another Worker of the account.",
        service=_name(required=True),
        environment=_name(),
        entrypoint=_name(),
        props=JSONObject(max_bytes=SHOWN_MAX_BYTES),
    ),
    "hyperdrive": _binding_input(
        "hyperdrive", "A Hyperdrive config.", id=_name(required=True)
    ),
    "mtls_certificate": _binding_input(
        "mtls_certificate", "An mTLS certificate.", certificate_id=_name(required=True)
    ),
    "r2_bucket": _binding_input(
        "r2_bucket",
        "Refused with its reason: R2 is not offered.",
        bucket_name=_name(),
        jurisdiction=_name(),
    ),
    "vectorize": _binding_input("vectorize", "A Vectorize index.", index_name=_name()),
    "analytics_engine": _binding_input(
        "analytics_engine", "An Analytics Engine dataset.", dataset=_name()
    ),
    "workflow": _binding_input(
        "workflow",
        "A Workflow.",
        workflow_name=_name(),
        class_name=_name(),
        script_name=_name(),
    ),
    "send_email": _binding_input(
        "send_email",
        "Email sending.",
        destination_address=_name(),
        allowed_destination_addresses=ListOf(_name(), max_items=1000),
    ),
    "dispatch_namespace": _binding_input(
        "dispatch_namespace",
        "A dispatch namespace.",
        namespace=_name(),
        outbound=JSONObject(max_bytes=SHOWN_MAX_BYTES),
    ),
    "ratelimit": _binding_input(
        "ratelimit",
        "A rate limit.",
        namespace_id=_name(),
        simple=JSONObject(max_bytes=SHOWN_MAX_BYTES),
    ),
    "secrets_store_secret": _binding_input(
        "secrets_store_secret",
        "A Secrets Store secret.",
        store_id=_name(),
        secret_name=_name(),
    ),
    **{
        kind: _binding_input(
            kind, "A service-worker script's module part.", part=_name(required=True)
        )
        for kind in ("wasm_module", "text_blob", "data_blob")
    },
    **{
        kind: _binding_input(kind, "A binding without fields.")
        for kind in (
            "assets",
            "ai",
            "browser",
            "images",
            "version_metadata",
            "worker_loader",
        )
    },
    "inherit": _binding_input(
        "inherit", "The current version's binding of that name, as it is."
    ),
}


class Binding(Field[NewBinding]):
    """One binding: ``name`` and ``type``, and the fields its type takes."""

    json_type = "object"

    def clean(self, value: Any, *, path: str, text: bool = False) -> NewBinding:
        if not isinstance(value, dict):
            raise InvalidInput(f"'{path}' must be an object.")
        kind = value.get("type")
        declared = BINDING_TYPES.get(kind) if isinstance(kind, str) else None
        if declared is None:
            raise InvalidInput(
                f"'{path}': binding {str(value.get('name'))[:100]} has an unknown "
                f"type {str(kind)[:100]!r}."
            )
        parsed = declared.parse(value, path=path)
        if isinstance(parsed, UploadedSecret):
            fields = {"text": parsed.text} if parsed.text is not None else {}
            fields.update(parsed.key_material())
        else:
            fields = {
                key: item
                for key, item in parsed.present().items()
                if key not in ("name", "type")
            }
        declared_as = parsed.values()
        return NewBinding(
            name=declared_as["name"], type=declared_as["type"], fields=fields
        )

    def schema(self) -> Schema:
        schema: Schema = {"anyOf": [self._one(k, i) for k, i in BINDING_TYPES.items()]}
        schema["description"] = self.__doc__
        return schema

    @staticmethod
    def _one(kind: str, declared: type[Input]) -> Schema:
        schema = declared.schema()
        schema["properties"] = {**schema["properties"], "type": {"const": kind}}
        schema["required"] = sorted({"name", "type", *schema.get("required", [])})
        return schema

    def example(self) -> dict[str, Any]:
        return {"name": "GREETING", "type": "plain_text", "text": "hi"}


# --- Durable Object migrations -----------------------------------------------------


class ClassRename(Input):
    old = _name(key="from", required=True)
    new = _name(key="to", required=True)


class ClassTransfer(ClassRename):
    from_script = _name(required=True, description="The Worker it comes from.")


class MigrationStepInput(Input):
    """One step: classes created (with SQLite storage or not), renamed,
    deleted or moved here from another Worker."""

    unknown = "ignore"
    new_classes = ListOf(_name(), default=[])
    new_sqlite_classes = ListOf(_name(), default=[])
    renamed_classes = ListOf(Nested(ClassRename), default=[])
    deleted_classes = ListOf(_name(), default=[])
    transferred_classes = ListOf(Nested(ClassTransfer), default=[])

    def step(self) -> MigrationStep:
        return MigrationStep(
            new_classes=self.new_classes,
            new_sqlite_classes=self.new_sqlite_classes,
            renamed_classes=[ClassMove(r.old, r.new) for r in self.renamed_classes],
            deleted_classes=self.deleted_classes,
            transferred_classes=[
                ClassMove(t.old, t.new, t.from_script) for t in self.transferred_classes
            ],
        )


class MigrationsInput(MigrationStepInput):
    """Migrations from ``old_tag`` (left out: no condition) to ``new_tag``:
    ``steps``, or a single step given in this object itself."""

    old_tag = Text(blank=True, max_length=100)
    new_tag = Text(blank=True, max_length=100)
    steps = ListOf(Nested(MigrationStepInput), max_items=1000)

    def migrations(self) -> Migrations:
        steps = self.steps if self.steps is not None else [self]
        return Migrations(
            old_tag=self.old_tag,
            new_tag=self.new_tag,
            steps=[entry.step() for entry in steps],
        )


# --- the metadata part -------------------------------------------------------------


class UploadedAssets(Input):
    unknown = "ignore"
    jwt = Text(max_length=8192, description="The completion token of an asset upload.")
    config = JSONObject(description="html_handling, not_found_handling, _headers ...")


class UploadMetadata(Input):
    """The 'metadata' part of a Worker upload. wrangler sends more than is read
    here (code_update_strategy, exports, containers, its config's unsafe
    keys ...): a field not listed is ignored."""

    unknown = "ignore"
    main_module = Text(max_length=255, description="The main module's part.")
    body_part = Text(max_length=255, description="A service-worker script's part.")
    compatibility_date = Text(
        blank=True, max_length=10, pattern=r"(\d{4}-\d{2}-\d{2})?"
    )
    compatibility_flags = ListOf(Text(max_length=100), max_items=1000, default=[])
    bindings = ListOf(Binding(), default=[])
    keep_bindings = ListOf(
        Text(max_length=100),
        max_items=100,
        default=[],
        description="Binding types kept from the current version.",
    )
    keep_assets = Boolean(default=False)
    migrations = Nested(MigrationsInput, error_code=MigrationInvalid.code)
    assets = Nested(UploadedAssets)
    annotations = JSONObject(
        max_bytes=ANNOTATIONS_MAX_BYTES,
        default={},
        description="workers/message and workers/tag.",
    )
    # Kept to be shown back (GET settings), never read to run the Worker.
    placement = JSONObject(max_bytes=SHOWN_MAX_BYTES)
    limits = JSONObject(max_bytes=SHOWN_MAX_BYTES)
    observability = JSONObject(max_bytes=SHOWN_MAX_BYTES)


UPLOAD_FORM = JSONPartForm(
    UploadMetadata,
    error_code=workers.ScriptInvalid.code,
    files="The modules, each named by its part's filename (the official SDK "
    "names every part 'files').",
)
SHOWN_BACK = ("placement", "limits", "observability")


def worker_upload(body: FormBody[UploadMetadata]) -> workers.WorkerUpload:
    """The upload as the service takes it."""
    metadata = body.json
    assets = metadata.assets
    return workers.WorkerUpload(
        # A module is named by its filename, as Cloudflare reads it: the
        # official SDK names every part "files"; wrangler names the part after
        # the file as well.
        modules=[replace(p, name=p.filename) if p.filename else p for p in body.files],
        main_module=metadata.main_module,
        body_part=metadata.body_part,
        compatibility_date=metadata.compatibility_date or "",
        compatibility_flags=metadata.compatibility_flags,
        annotations=metadata.annotations,
        bindings=metadata.bindings,
        keep_bindings=metadata.keep_bindings,
        migrations=metadata.migrations.migrations() if metadata.migrations else None,
        assets=None
        if assets is None
        else workers.UploadAssets(
            completion_token=assets.jwt or None,
            config=assets.config,
            keep=metadata.keep_assets,
        ),
        shown={
            key: value
            for key, value in metadata.values().items()
            if key in SHOWN_BACK and value is not None
        },
    )
