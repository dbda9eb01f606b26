"""Bot verdicts over two public corpora, both installed by the project, nothing downloaded here.

- Bots: every example User-Agent (``instances``) of the crawler-user-agents list (PyPI
  ``crawler-user-agents``, a dependency of DataFast).
- Browsers: the real-traffic agents of npm ``user-agents`` (a devDependency of tracker/, which
  ``make build`` installs with ``npm ci``), each with the device category it was seen on.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest
from crawleruseragents import CRAWLER_USER_AGENTS_DATA

from datafast.lib import ua
from datafast.lib.ua import CRAWLER_USER_AGENTS_FIXES, parse_user_agent

USER_AGENTS_DIST = Path(__file__).resolve().parents[2] / "tracker/node_modules/user-agents/dist"

CRAWLER_EXAMPLES = [example for entry in CRAWLER_USER_AGENTS_DATA for example in entry["instances"]]
LEFT_OUT = [pattern for pattern, replacement in CRAWLER_USER_AGENTS_FIXES.items() if replacement is None]
# Examples of crawler-user-agents that are browsers' User-Agents: VS Code's, Trae's, Fluid's, and
# the Instagram and Facebook in-app browsers, whose patterns CRAWLER_USER_AGENTS_FIXES leaves out.
# (Before that list was added: 293 of its 2,123 examples were counted as visitors.)
EXPECTED_NOT_BOTS = 5


def _load_real_traffic() -> list[dict[str, Any]]:
    for name, read in (
        ("user-agents.json", Path.read_bytes),
        ("user-agents.json.gz", lambda path: gzip.decompress(path.read_bytes())),
    ):
        path = USER_AGENTS_DIST / name
        if path.exists():
            agents: list[dict[str, Any]] = json.loads(read(path))
            return agents
    pytest.fail(
        f"{USER_AGENTS_DIST}/user-agents.json(.gz) is missing: run `make build` "
        "(its `npm ci` in tracker/ installs the user-agents devDependency)",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def real_traffic() -> list[dict[str, Any]]:
    return _load_real_traffic()


def test_crawler_user_agents_examples_are_bots() -> None:
    not_bots = [example for example in CRAWLER_EXAMPLES if not parse_user_agent(example).is_bot]
    print(f"crawler-user-agents: {len(not_bots)} of {len(CRAWLER_EXAMPLES)} examples counted as visitors")
    assert len(CRAWLER_EXAMPLES) > 2000
    assert len(not_bots) <= len(CRAWLER_EXAMPLES) / 100
    assert len(not_bots) == EXPECTED_NOT_BOTS, not_bots
    # ... and each is a browser that one of the left-out patterns matched.
    assert all(any(re.search(pattern, example) for pattern in LEFT_OUT) for example in not_bots)


def test_real_traffic_browsers_are_kept_with_their_device(real_traffic: list[dict[str, Any]]) -> None:
    agents = {(agent["userAgent"], agent.get("deviceCategory")) for agent in real_traffic}
    dropped = sorted(header for header, _ in agents if parse_user_agent(header).is_bot)
    wrong_device = sorted(
        (header, category, parse_user_agent(header).device)
        for header, category in agents
        if category is not None and parse_user_agent(header).device != category
    )
    print(
        f"user-agents: {len(real_traffic)} agents ({len(agents)} distinct), {len(dropped)} dropped, "
        f"{len(wrong_device)} with another device type than deviceCategory"
    )
    assert len(real_traffic) >= 3000
    assert {category for _, category in agents} == {"desktop", "mobile", "tablet"}
    assert dropped == []
    assert wrong_device == []


# Browsers that a pattern of crawler-user-agents (the key) drops → the device type they get.
# From isbot's and uap-core's browser examples and crawler-user-agents' own.
DROPPED_BY_THE_LIST: dict[str, tuple[str, str]] = {
    r"Code\/1\.": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Code/1.115.0 Chrome/142.0.7444.265 Electron/39.8.5 Safari/537.36",
        "desktop",
    ),
    r"Trae\/": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Trae/1.107.1 Chrome/142.0.7444.235 Electron/39.2.7 Safari/537.36",
        "desktop",
    ),
    r"AP3A\.240617\.008": (
        "Mozilla/5.0 (Linux; Android 15; CPH2557 Build/AP3A.240617.008; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/142.0.7444.142 Mobile Safari/537.36 Instagram "
        "406.0.0.58.159 Android (35/15; 480dpi; 1080x2400; OPPO; CPH2557; OP573DL1; mt6833; en_MY; "
        "822918295; IABMV/1) NV/1",
        "mobile",
    ),
    r"MetaIAB Facebook": (
        "Mozilla/5.0 (Linux; Android 16; Pixel 10 Pro XL Build/CP1A.260305.018; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/146.0.7680.174 Mobile Safari/537.36 MetaIAB Facebook",
        "mobile",
    ),
    r"Fluid": (
        "Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_5_6; en-us) AppleWebKit/528.16 (KHTML, like Gecko) "
        "Fluid/0.9.6 Safari/528.16",
        "desktop",
    ),
    r"Butterfly": (
        "Mozilla/5.0 (Linux; Android 4.4.2; HTC Butterfly s 901s Build/KOT49H) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/42.0.2311.111 Mobile Safari/537.36",
        "mobile",
    ),
    r"Sonic": (
        "Mozilla/5.0 (Linux; U; Android 2.3;en-us; ViewSonic-ViewPad7e Build/ERE27) AppleWebKit/533.1 "
        "(KHTML, Like Gecko) Version/4.0 Mobile Safari/533.1",
        "mobile",
    ),
    r"Viber": (
        "Mozilla/5.0 (Linux; Android 7.1.2; G011A Build/N2G48H; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Version/4.0 Chrome/66.0.3359.158 Safari/537.36 Viber/11.9.5.8",
        "tablet",
    ),
    r"RED\/": (
        "Mozilla/5.0 (iPad; U; CPU iPhone OS 7_0 like Mac OS X; de-DE) WIRED/3.2.3.11.87970",
        "tablet",
    ),
    r"008\/": (
        "Opera/9.80 (MAUI Runtime; Opera Mini/4.4.39008/37.9178; U; en) Presto/2.12.423 Version/12.16",
        "mobile",
    ),
}


def test_every_fix_is_tested_and_still_in_the_list() -> None:
    assert set(DROPPED_BY_THE_LIST) == set(CRAWLER_USER_AGENTS_FIXES)
    listed = {entry["pattern"] for entry in CRAWLER_USER_AGENTS_DATA}
    assert set(CRAWLER_USER_AGENTS_FIXES) <= listed


@pytest.mark.parametrize("pattern", list(DROPPED_BY_THE_LIST))
def test_list_patterns_that_drop_browsers_are_left_out_or_narrowed(pattern: str) -> None:
    header, device = DROPPED_BY_THE_LIST[pattern]
    assert re.search(pattern, header)  # the list's pattern as published drops this browser
    result = parse_user_agent(header)
    assert not result.is_bot
    assert result.device == device
    narrowed = CRAWLER_USER_AGENTS_FIXES[pattern]
    if narrowed is not None:  # the bots it was listed for are still bots
        entry = next(entry for entry in CRAWLER_USER_AGENTS_DATA if entry["pattern"] == pattern)
        for example in entry["instances"]:
            assert parse_user_agent(example).is_bot, example
        assert not re.search(narrowed, header)


_PYTHON_ONLY = ua._PatternSet(ua._crawler_list_patterns(), native=False, case_sensitive=True)


def test_the_list_gives_the_same_verdicts_in_rust_and_python(real_traffic: list[dict[str, Any]]) -> None:
    assert ua._crawler_list.native
    assert not _PYTHON_ONLY.native
    headers = sorted({agent["userAgent"] for agent in real_traffic}) + CRAWLER_EXAMPLES
    rust = [ua._crawler_list.search(header.strip()) for header in headers]
    assert rust == [_PYTHON_ONLY.search(header.strip()) for header in headers]
    assert sum(rust) > 2000


def test_the_list_is_case_sensitive_as_written() -> None:
    # "[cC]laude[bB]ot", "[wW]get": the list spells out the cases it means.
    assert parse_user_agent("Mozilla/5.0 (compatible; ClaudeBot/1.0; +claudebot@anthropic.com)").is_bot
    assert ua._crawler_list.search("Amazon CloudFront")
    assert not ua._crawler_list.search("amazon cloudfront")
