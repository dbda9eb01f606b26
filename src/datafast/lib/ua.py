"""User-Agent → browser, OS, device type, and whether it is a bot.

- Browser/OS/device: ``ua-parser`` with the regexes maintained in ``ua-parser-builtins``,
  run by the native ``ua-parser-rs`` resolver when it is installed (pure Python otherwise).
- Bots: the crawler patterns of ``crawlerdetect`` (a port of JayBizzle/Crawler-Detect) and of
  ``crawler-user-agents`` (monperrus/crawler-user-agents: monitors, feed readers, link
  previewers, AI agents… that Crawler-Detect misses), plus headless/automation browsers and HTTP
  libraries, ua-parser's "Spider" devices and empty User-Agents. Each list (~1,500 patterns)
  runs as one Rust regex set when ``ua-parser-rs`` is available (~5 µs instead of ~500 µs for
  Python's ``re`` on a typical browser UA). Crawler-Detect's patterns are searched in the
  lowercased UA (3x faster in Python's ``re`` than ``re.IGNORECASE``); crawler-user-agents'
  are case-sensitive, as that list is written (``[cC]laude[bB]ot``), and searched in the UA as sent.

Everything is compiled at import. Results are cached per User-Agent string (bounded), so a
repeated UA costs one dict lookup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

import crawleruseragents
import msgspec
import ua_parser
from crawlerdetect.providers.crawlers import data as _crawler_patterns
from crawlerdetect.providers.exclusions import data as _exclusion_patterns

__all__ = ("MAX_USER_AGENT_LENGTH", "UserAgent", "parse_user_agent")

MAX_USER_AGENT_LENGTH = 1024
"""Longer User-Agents are cut to this before parsing (bounds regex time and cache memory)."""
CACHE_SIZE = 16_384

Device = Literal["desktop", "mobile", "tablet", "bot", ""]


class UserAgent(msgspec.Struct, frozen=True):
    browser: str = ""
    browser_version: str = ""
    """``major.minor`` (or ``major``), e.g. ``131.0``."""
    os: str = ""
    os_version: str = ""
    """``major.minor`` (or ``major``), e.g. ``18.1``; Windows 11 reports itself as 10."""
    device: Device = ""
    is_bot: bool = False


# --- crawler detection --------------------------------------------------------------------------


_UNSUPPORTED_IN_RUST = re.compile(r"\(\?<?[=!]|\\[1-9]")  # look-arounds, back-references


def _lowercase_pattern(pattern: str) -> str:
    """The pattern for lowercased text: literal letters lowered, escapes (``\\D``, ``\\\\H``) kept."""
    return re.sub(r"(\\.)|([A-Z]+)", lambda m: m.group(1) or m.group(2).lower(), pattern)


class _PatternSet:
    """Does any of these case-insensitive patterns occur in a (lowercased) text?

    The patterns run as one ``ua-parser-rs`` extractor (a Rust regex set) when that package is
    installed; patterns Rust's engine lacks support for (look-arounds), or all of them without
    it, run as one Python ``re`` alternation. Searching lowercased text with lowercased patterns
    instead of ``re.IGNORECASE`` is what makes the Python side fast (~3x). With
    ``case_sensitive=True`` the patterns are kept as written, for text as sent.
    """

    def __init__(self, patterns: Sequence[str], *, native: bool = True, case_sensitive: bool = False) -> None:
        prepared = list(patterns) if case_sensitive else [_lowercase_pattern(p) for p in patterns]
        python = prepared
        self._rust: Any = None
        if native:
            try:
                import ua_parser_rs

                rust = [p for p in prepared if not _UNSUPPORTED_IN_RUST.search(p)]
                self._rust = ua_parser_rs.UserAgentExtractor(
                    [(p, "bot", None, None, None, None) for p in rust]
                )
                python = [p for p in prepared if _UNSUPPORTED_IN_RUST.search(p)]
            except Exception:  # ua-parser-rs missing, or a pattern its engine rejects
                self._rust = None
        self._python = re.compile("|".join(python)) if python else None

    @property
    def native(self) -> bool:
        return self._rust is not None

    def search(self, text: str) -> bool:
        if self._rust is not None and self._rust.extract(text) is not None:
            return True
        return self._python is not None and self._python.search(text) is not None


class _CrawlerDetector:
    """``crawlerdetect.CrawlerDetect().is_crawler(ua)`` on a lowercased UA, minus its per-instance state."""

    def __init__(self, *, native: bool = True) -> None:
        # crawlerdetect first deletes the tokens every browser sends, then searches what is left.
        self.exclusions = re.compile("|".join(_lowercase_pattern(p) for p in _exclusion_patterns))
        self.crawlers = _PatternSet(_crawler_patterns, native=native)

    def __call__(self, lowered: str) -> bool:
        agent = self.exclusions.sub("", lowered)
        return bool(agent) and self.crawlers.search(agent)


_is_crawler = _CrawlerDetector()

# crawler-user-agents' patterns that match real browsers (checked against the real-traffic agents
# of npm ``user-agents`` and the browser examples of isbot and uap-core): left out (``None``) or
# narrowed to the bot they are meant for. tests/unit/test_bots.py has each browser they dropped.
CRAWLER_USER_AGENTS_FIXES: dict[str, str | None] = {
    # Listed for GitHub Copilot's agent and ByteDance's, but they are the User-Agents of the VS
    # Code and Trae editors (Electron): every webview or preview tab a developer opens sends them.
    r"Code\/1\.": None,
    r"Trae\/": None,
    # An Android 15 build id (listed for 80legs; its example is an Instagram in-app browser): every
    # browser on the many phones with this firmware sends it.
    r"AP3A\.240617\.008": None,
    # Listed as Facebook's link previewer, but it is Meta's in-app browser (isbot: not a bot).
    r"MetaIAB Facebook": None,
    # Fluid is a macOS site-specific browser (a WebKit window per web app), used by people.
    r"Fluid": None,
    # Bare words and suffixes inside device and app names: "HTC Butterfly s", "ViewSonic-ViewPad7e",
    # the Viber in-app browser ("... Safari/537.36 Viber/11.9.5.8"), the WIRED app ("WIRED/3.2"),
    # Opera Mini ("Opera Mini/4.4.39008/37.9178").
    r"Butterfly": r"Butterfly/",
    r"Sonic": r"\bSonic/",
    r"Viber": r"^Viber$",
    r"RED\/": r"^RED/",
    r"008\/": r"^008/",
}


def _crawler_list_patterns() -> list[str]:
    patterns = []
    for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA:
        pattern = CRAWLER_USER_AGENTS_FIXES.get(entry["pattern"], entry["pattern"])
        if pattern is not None:
            patterns.append(pattern)
    return patterns


_crawler_list = _PatternSet(_crawler_list_patterns(), case_sensitive=True)

# Automation, headless browsers, site auditors and HTTP libraries (some are in crawlerdetect
# too; this keeps them flagged whatever its list does). Searched in the lowercased UA.
_AUTOMATION = _PatternSet(
    [
        r"headless", r"phantomjs", r"slimerjs", r"nightmare", r"puppeteer", r"playwright", r"selenium",
        r"webdriver", r"cypress/", r"lighthouse", r"pagespeed", r"gtmetrix", r"pingdom", r"uptimerobot",
        r"python-requests", r"python-urllib", r"python-httpx", r"aiohttp", r"httpx/", r"\bcurl/",
        r"\bwget/", r"go-http-client", r"okhttp", r"\bjava/", r"apache-httpclient", r"node-fetch",
        r"axios/", r"undici", r"libwww-perl", r"scrapy", r"httpie", r"postmanruntime", r"insomnia/",
        r"guzzlehttp", r"\bruby\b", r"powershell", r"\bdeno/", r"\bbun/",
    ]
)  # fmt: skip
# Product tokens (``Name/1.2``) outside parentheses: a bare Electron shell has only these.
_PRODUCT = re.compile(r"([A-Za-z][\w.-]*)/[\w.]+")
_ELECTRON_SHELL = frozenset({"Mozilla", "AppleWebKit", "Chrome", "Electron", "Safari"})
_PARENTHESES = re.compile(r"\([^)]*\)")


def _bare_electron(user_agent: str) -> bool:
    """Electron without an app's own token: a scripted shell (Nightmare, electron-pdf…), not Slack/VS Code."""
    products = set(_PRODUCT.findall(_PARENTHESES.sub(" ", user_agent)))
    return products <= _ELECTRON_SHELL


# --- names and device types ---------------------------------------------------------------------

_BROWSER_NAMES = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Safari UI/WKWebView": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome WebView",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
    "Other": "",
}
_OS_NAMES = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS", "Other": ""}
_MOBILE_OS = frozenset(
    {"iOS", "Windows Phone", "Windows Mobile", "BlackBerry OS", "BlackBerry Tablet OS", "KaiOS", "Symbian OS",
     "Firefox OS", "Sailfish", "webOS", "Bada", "MeeGo", "Maemo", "HarmonyOS"}
)  # fmt: skip
_DESKTOP_OS = frozenset(
    {"Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora", "Debian", "Mint", "Arch Linux",
     "Gentoo", "Kubuntu", "Red Hat", "SUSE", "Slackware", "Mandriva", "CentOS", "FreeBSD", "OpenBSD",
     "NetBSD", "Solaris", "Haiku", "BeOS", "OS/2"}
)  # fmt: skip
_TABLET_DEVICES = frozenset({"iPad", "Kindle", "Generic Tablet"})
_TABLET_BRANDS = frozenset({"Generic_Android_Tablet"})
_MOBILE_DEVICES = frozenset({"iPhone", "iPod", "Generic Smartphone", "Generic Feature Phone"})


def _version(major: str | None, minor: str | None) -> str:
    if not major:
        return ""
    return f"{major}.{minor}" if minor else major


def _device_type(user_agent: str, os_family: str, device: ua_parser.Device | None) -> Device:
    family = device.family if device is not None else ""
    brand = (device.brand or "") if device is not None else ""
    if family in _TABLET_DEVICES or brand in _TABLET_BRANDS:
        return "tablet"
    if os_family == "Android":
        # Android phones send "Mobile"; Chrome (and most browsers) on tablets leave it out.
        return "mobile" if "Mobile" in user_agent and "Tablet" not in user_agent else "tablet"
    if family in _MOBILE_DEVICES or os_family in _MOBILE_OS:
        return "mobile"
    if os_family in _DESKTOP_OS:  # before "Tablet": Windows sends "Tablet PC 2.0" on many desktops
        return "desktop"
    if "Tablet" in user_agent:
        return "tablet"
    if "Mobi" in user_agent:
        return "mobile"
    return ""


# --- parsing -------------------------------------------------------------------------------------

_resolver = ua_parser.BestAvailableResolver(
    ua_parser.load_lazy_builtins() if ua_parser.RegexResolver is not None else ua_parser.load_builtins()
)


def _parse(user_agent: str) -> UserAgent:
    stripped = user_agent.strip()
    if not stripped:
        return UserAgent(device="bot", is_bot=True)
    result = _resolver(stripped, ua_parser.Domain.ALL)
    agent, os, device = result.user_agent, result.os, result.device
    browser = _BROWSER_NAMES.get(agent.family, agent.family) if agent is not None else ""
    os_family = os.family if os is not None else ""
    lowered = stripped.lower()
    is_bot = (
        (device is not None and device.family == "Spider")
        or _AUTOMATION.search(lowered)
        or _crawler_list.search(stripped)
        or _is_crawler(lowered)
        or (browser == "Electron" and _bare_electron(stripped))
    )
    return UserAgent(
        browser=browser,
        browser_version=_version(agent.major, agent.minor) if agent is not None and browser else "",
        os=_OS_NAMES.get(os_family, os_family),
        os_version=_version(os.major, os.minor) if os is not None and os_family != "Other" else "",
        device="bot" if is_bot else _device_type(stripped, os_family, device),
        is_bot=is_bot,
    )


_parse_cached = lru_cache(maxsize=CACHE_SIZE)(_parse)


def parse_user_agent(ua: str) -> UserAgent:
    """Browser, OS, device type and bot verdict of a User-Agent header (cached per string)."""
    return _parse_cached(ua[:MAX_USER_AGENT_LENGTH] if len(ua) > MAX_USER_AGENT_LENGTH else ua)
