"""README.md's "Config reference" documents exactly the keys the settings model knows."""

import re
from pathlib import Path

from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from core.settings import SECRET_KEYS, Settings

README = Path(__file__).resolve().parents[3] / "README.md"


def _reference() -> str:
    text = README.read_text()
    start = text.index("## Config reference")
    return text[start : text.index("\n## ", start + 1)]


def documented_keys() -> set[str]:
    keys: set[str] = set()
    for line in _reference().splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        section = ""
        for name in re.findall(r"`([^`]+)`", first):
            if name.startswith("."):
                keys.add(f"{section}{name}")
            else:
                keys.add(name)
                section = name.rsplit(".", 1)[0] if "." in name else ""
    secrets = _reference().split("Secrets (", 1)[1].split("\n\n", 1)[0]
    keys |= {name for name in re.findall(r"`([A-Za-z0-9]+)`", secrets) if name in SECRET_KEYS}
    return keys


def _keys(model: type[BaseModel], prefix: str) -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        key = f"{prefix}{to_camel(name)}"
        if isinstance(field.default, BaseModel):
            keys |= _keys(type(field.default), f"{key}.")  # a section, documented key by key
        else:
            keys.add(key)  # a value, a secret, or an object documented whole (blueBuild)
    return keys


def model_keys() -> set[str]:
    return _keys(Settings, "")


def test_every_key_the_model_knows_is_documented() -> None:
    assert model_keys() - documented_keys() == set()


def test_every_documented_key_exists() -> None:
    assert documented_keys() - model_keys() == set()
