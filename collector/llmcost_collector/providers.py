"""The provider table, read once from ``data/providers.yaml``: which genai-prices id prices a
provider, what other instrumentations call it, and how it counts input tokens. Data apart from
code, so adding a provider is a one-line change that normalizing and pricing both see.
"""

from __future__ import annotations

from importlib import resources

import yaml

_DOC = yaml.safe_load(resources.files("llmcost_collector").joinpath("data/providers.yaml").read_text())
_PROVIDERS: dict[str, dict] = _DOC["providers"]

# gen_ai.provider.name -> genai-prices provider id (an alias maps like its provider)
PRICE_IDS: dict[str, str] = {name: spec["prices"] for name, spec in _PROVIDERS.items()}
# other names -> gen_ai.provider.name
ALIASES: dict[str, str] = {
    alias: name for name, spec in _PROVIDERS.items() for alias in spec.get("aliases", ())
}
# providers whose input token count excludes cache reads and writes
INPUT_EXCLUDES_CACHE: frozenset[str] = frozenset(
    name for name, spec in _PROVIDERS.items() if spec.get("usage") == "input_excludes_cache"
)
SELF_HOSTED: frozenset[str] = frozenset(_DOC["self_hosted"])
