"""Where a visit came from: a source name ("Google", "Hacker News", "example.com") and a channel.

Rules, in order (like Plausible and Google Analytics):

1. Tags on the landing page's URL win over the Referer header:
   - ``utm_source`` names the source (normalised when known: ``fb`` → Facebook);
   - ``utm_medium`` sets the channel: cpc/ppc/paid…/display/cpm → paid, email/newsletter → email,
     social/social-network… → social, organic → search when the source is a search engine;
   - click ids: gclid/gbraid/wbraid → Google paid, msclkid → Bing paid, ttclid → TikTok paid,
     twclid → Twitter paid, li_fat_id → LinkedIn paid, fbclid → Facebook social (Facebook adds it
     to every outbound link, so it is not proof of an ad; ``utm_medium`` can still say paid);
   - without ``utm_source``: ``ref``, ``via`` or ``source`` name the source.
2. No referrer, or the site itself (its hostnames and their subdomains) → direct.
3. A known referring host (a maintained copy of Snowplow's referer list, plus a curated table
   for sites it lacks: AI assistants, Product Hunt, Kagi…) → its name and medium.
4. Any other host → that domain (without ``www.``), channel referral.

Host lookups and tag normalisation are cached (bounded).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

import msgspec

__all__ = ("DIRECT", "Channel", "Source", "classify", "lookup_host")

Channel = Literal["direct", "search", "social", "email", "paid", "referral"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)


class Source(msgspec.Struct, frozen=True):
    source: str = ""
    """A readable name ("Google", "Hacker News") or the referring domain; "" for direct visits."""
    channel: Channel = "direct"


DIRECT = Source()

MAX_NAME_LENGTH = 100
"""Tagged source names (utm_source, ref…) are cut to this."""
MAX_HOST_LENGTH = 253

_DATA_FILE = Path(__file__).with_name("data") / "referrers.tsv"
_MEDIUM_CHANNEL: dict[str, Channel] = {
    "search": "search",
    "social": "social",
    "email": "email",
    "paid": "paid",
    "referral": "referral",
    "unknown": "referral",
}

# Known referrers the generated list lacks or names differently: host → (name, channel).
# AI assistants count as referrals.
_CURATED: dict[str, tuple[str, Channel]] = {
    # AI assistants
    "chatgpt.com": ("ChatGPT", "referral"),
    "chat.openai.com": ("ChatGPT", "referral"),
    "perplexity.ai": ("Perplexity", "referral"),
    "claude.ai": ("Claude", "referral"),
    "gemini.google.com": ("Gemini", "referral"),
    "bard.google.com": ("Gemini", "referral"),
    "copilot.microsoft.com": ("Microsoft Copilot", "referral"),
    "chat.deepseek.com": ("DeepSeek", "referral"),
    "grok.com": ("Grok", "referral"),
    "chat.mistral.ai": ("Mistral", "referral"),
    "meta.ai": ("Meta AI", "referral"),
    "poe.com": ("Poe", "referral"),
    "phind.com": ("Phind", "referral"),
    "you.com": ("You.com", "referral"),
    # social and communities
    "news.ycombinator.com": ("Hacker News", "social"),
    "producthunt.com": ("Product Hunt", "social"),
    "threads.net": ("Threads", "social"),
    "threads.com": ("Threads", "social"),
    "tiktok.com": ("TikTok", "social"),
    "snapchat.com": ("Snapchat", "social"),
    "discord.com": ("Discord", "social"),
    "discord.gg": ("Discord", "social"),
    "discordapp.com": ("Discord", "social"),
    "t.me": ("Telegram", "social"),
    "web.telegram.org": ("Telegram", "social"),
    "org.telegram.messenger": ("Telegram", "social"),
    "wa.me": ("WhatsApp", "social"),
    "com.whatsapp": ("WhatsApp", "social"),
    "messenger.com": ("Facebook Messenger", "social"),
    "com.facebook.katana": ("Facebook", "social"),
    "com.instagram.android": ("Instagram", "social"),
    "com.linkedin.android": ("LinkedIn", "social"),
    "com.twitter.android": ("Twitter", "social"),
    "app.slack.com": ("Slack", "social"),
    "com.slack": ("Slack", "social"),
    "teams.microsoft.com": ("Microsoft Teams", "social"),
    "statics.teams.cdn.office.net": ("Microsoft Teams", "social"),
    "medium.com": ("Medium", "social"),
    "lobste.rs": ("Lobsters", "social"),
    "dev.to": ("DEV", "social"),
    "mastodon.social": ("Mastodon", "social"),
    "bsky.app": ("Bluesky", "social"),
    "youtube.com": ("YouTube", "social"),
    "youtu.be": ("YouTube", "social"),
    "github.com": ("GitHub", "social"),
    "linkedin.com": ("LinkedIn", "social"),
    "lnkd.in": ("LinkedIn", "social"),
    "reddit.com": ("Reddit", "social"),
    # search engines
    "kagi.com": ("Kagi", "search"),
    "ecosia.org": ("Ecosia", "search"),
    "search.brave.com": ("Brave Search", "search"),
    "ya.ru": ("Yandex", "search"),
    "baidu.com": ("Baidu", "search"),
    "naver.com": ("Naver", "search"),
    "startpage.com": ("Startpage", "search"),
    "presearch.com": ("Presearch", "search"),
    "mojeek.com": ("Mojeek", "search"),
    "swisscows.com": ("Swisscows", "search"),
    "scholar.google.com": ("Google Scholar", "search"),
    "lens.google.com": ("Google", "search"),
    # Google sites that are not its search engine
    "docs.google.com": ("Google Docs", "referral"),
    "classroom.google.com": ("Google Classroom", "referral"),
    "calendar.google.com": ("Google Calendar", "referral"),
    "play.google.com": ("Google Play", "referral"),
    "translate.google.com": ("Google Translate", "referral"),
    "books.google.com": ("Google Books", "referral"),
    "cloud.google.com": ("Google Cloud", "referral"),
    "analytics.google.com": ("Google Analytics", "referral"),
    "ads.google.com": ("Google Ads", "referral"),
    "syndicatedsearch.goog": ("Google", "paid"),
    # mail
    "outlook.office.com": ("Outlook.com", "email"),
    "outlook.office365.com": ("Outlook.com", "email"),
    "outlook.live.com": ("Outlook.com", "email"),
    "com.microsoft.office.outlook": ("Outlook.com", "email"),
    "mail.proton.me": ("Proton Mail", "email"),
    "mail.protonmail.com": ("Proton Mail", "email"),
    "app.fastmail.com": ("Fastmail", "email"),
    "fastmail.com": ("Fastmail", "email"),
    "app.tuta.com": ("Tuta", "email"),
    "mail.tutanota.com": ("Tuta", "email"),
    "icloud.com": ("iCloud Mail", "email"),
    "mail.hey.com": ("HEY", "email"),
    "app.hey.com": ("HEY", "email"),
}

# Search engines with a domain per country; anything the list misses there is still the engine.
_SEARCH_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(?:www\.)?google\.(?:com?\.)?[a-z]{2,3}$"), "Google"),
    (re.compile(r"^(?:www\.)?yandex\.(?:com?\.)?[a-z]{2,3}$"), "Yandex"),
    (re.compile(r"^search\.yahoo\.(?:com?\.)?[a-z]{2,3}$"), "Yahoo!"),
)

# Tagged names (utm_source, ref…), lowercased, that do not match a list name as written.
_ALIASES: dict[str, tuple[str, Channel]] = {
    "fb": ("Facebook", "social"),
    "ig": ("Instagram", "social"),
    "insta": ("Instagram", "social"),
    "tw": ("Twitter", "social"),
    "x": ("Twitter", "social"),
    "li": ("LinkedIn", "social"),
    "yt": ("YouTube", "social"),
    "hn": ("Hacker News", "social"),
    "hackernews": ("Hacker News", "social"),
    "hacker_news": ("Hacker News", "social"),
    "hacker-news": ("Hacker News", "social"),
    "ycombinator": ("Hacker News", "social"),
    "producthunt": ("Product Hunt", "social"),
    "product_hunt": ("Product Hunt", "social"),
    "product-hunt": ("Product Hunt", "social"),
    "ddg": ("DuckDuckGo", "search"),
    "brave": ("Brave Search", "search"),
    "chatgpt": ("ChatGPT", "referral"),
    "openai": ("ChatGPT", "referral"),
    "perplexity": ("Perplexity", "referral"),
    "claude": ("Claude", "referral"),
    "gemini": ("Gemini", "referral"),
    "copilot": ("Microsoft Copilot", "referral"),
    "tiktok": ("TikTok", "social"),
    "threads": ("Threads", "social"),
    "bluesky": ("Bluesky", "social"),
    "bsky": ("Bluesky", "social"),
    "mastodon": ("Mastodon", "social"),
    "telegram": ("Telegram", "social"),
    "whatsapp": ("WhatsApp", "social"),
    "discord": ("Discord", "social"),
    "slack": ("Slack", "social"),
}
_EMAIL_NAMES = frozenset({"email", "e-mail", "e_mail", "e mail", "mail", "newsletter"})

_PAID_MEDIA = frozenset({"cpc", "ppc", "paid", "paidsearch", "display", "cpm", "cpv", "cpa", "cpp", "banner",
                         "retargeting", "remarketing", "ads", "ad", "sem"})  # fmt: skip
_EMAIL_MEDIA = _EMAIL_NAMES
_SOCIAL_MEDIA = frozenset({"social", "social-network", "social_network", "social network", "social-media",
                           "social_media", "social media", "sm"})  # fmt: skip
_REFERRAL_MEDIA = frozenset({"referral", "link", "app", "affiliate", "partner"})

# Click ids that ad platforms append: parameter → (source, channel).
_CLICK_IDS: tuple[tuple[str, tuple[str, Channel]], ...] = (
    ("gclid", ("Google", "paid")),
    ("gbraid", ("Google", "paid")),
    ("wbraid", ("Google", "paid")),
    ("msclkid", ("Bing", "paid")),
    ("ttclid", ("TikTok", "paid")),
    ("twclid", ("Twitter", "paid")),
    ("li_fat_id", ("LinkedIn", "paid")),
    ("fbclid", ("Facebook", "social")),
)

_Known = tuple[str, Channel]
_TAG_PARAMETERS = frozenset(
    {"utm_source", "utm_medium", "ref", "via", "source"} | {parameter for parameter, _ in _CLICK_IDS}
)


def _load() -> tuple[dict[str, _Known], dict[str, tuple[tuple[str, _Known], ...]], dict[str, _Known]]:
    """Hosts, host → (path prefix, entry) pairs longest first, and lowercased name → entry."""
    hosts: dict[str, _Known] = {}
    paths: dict[str, list[tuple[str, _Known]]] = {}
    media_by_name: dict[str, dict[Channel, int]] = {}
    display: dict[str, str] = {}
    with _DATA_FILE.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            key, medium, name = line.rstrip("\n").split("\t")
            channel = _MEDIUM_CHANNEL.get(medium, "referral")
            host, slash, path = key.partition("/")
            if slash:
                paths.setdefault(host, []).append(("/" + path, (name, channel)))
            else:
                hosts[host] = (name, channel)
            counts = media_by_name.setdefault(name.lower(), {})
            counts[channel] = counts.get(channel, 0) + 1
            display.setdefault(name.lower(), name)
    for host, entry in _CURATED.items():
        hosts[host] = entry
        counts = media_by_name.setdefault(entry[0].lower(), {})
        counts[entry[1]] = counts.get(entry[1], 0) + 1
        display[entry[0].lower()] = entry[0]
    # One spelling per name (the curated one where both exist: "YouTube", not "Youtube").
    hosts = {host: (display[name.lower()], channel) for host, (name, channel) in hosts.items()}
    names: dict[str, _Known] = {
        key: (display[key], max(counts, key=lambda c: (counts[c], c != "referral")))
        for key, counts in media_by_name.items()
    }
    names.update(_ALIASES)
    sorted_paths = {
        host: tuple(
            sorted(
                ((prefix, (display[n.lower()], c)) for prefix, (n, c) in entries), key=lambda e: -len(e[0])
            )
        )
        for host, entries in paths.items()
    }
    return hosts, sorted_paths, names


_HOSTS, _PATHS, _NAMES = _load()

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^/?#@]*@)?(\[[^\]/?#]*\]|[^/?#:]*)(?::[^/?#]*)?([^?#]*)")
_BARE_HOST = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")


def _split(referrer: str) -> tuple[str, str]:
    """(lowercased host, path) of an absolute URL such as ``https://user@Host:8080/path?q``."""
    match = _URL.match(referrer)
    if match is None:
        return "", ""
    host = match.group(1).lower().rstrip(".")
    if len(host) > MAX_HOST_LENGTH:
        return "", ""
    return host, match.group(2)


@lru_cache(maxsize=16_384)
def _host_entry(host: str) -> tuple[_Known | None, tuple[tuple[str, _Known], ...]]:
    """The host's entry (its own, a parent domain's, or a search pattern's) and its path entries."""
    paths = _PATHS.get(host, ())
    if host.startswith("www.") and host[4:] in _PATHS:
        paths = tuple(sorted({*paths, *_PATHS[host[4:]]}, key=lambda e: -len(e[0])))
    entry = _HOSTS.get(host)
    if entry is None:
        labels = host.split(".")
        for i in range(1, len(labels) - 1):
            entry = _HOSTS.get(".".join(labels[i:]))
            if entry is not None:
                break
    if entry is None:
        for pattern, name in _SEARCH_PATTERNS:
            if pattern.match(host):
                entry = (name, "search")
                break
    return entry, paths


def lookup_host(host: str, path: str = "/") -> tuple[str, Channel] | None:
    """The known (name, channel) of a referring host (and path), or None."""
    entry, paths = _host_entry(host.lower().rstrip("."))
    for prefix, path_entry in paths:
        if path.startswith(prefix):
            return path_entry
    return entry


@lru_cache(maxsize=16_384)
def _host_source(host: str) -> tuple[Source, tuple[tuple[str, Source], ...]]:
    """An external host's Source, and the Sources of its path-prefix entries (cached per host)."""
    entry, paths = _host_entry(host)
    source = Source(*entry) if entry else Source(host[4:] if host.startswith("www.") else host, "referral")
    return source, tuple((prefix, Source(*known)) for prefix, known in paths)


def _external_source(host: str, path: str) -> Source:
    source, paths = _host_source(host)
    for prefix, path_source in paths:
        if path.startswith(prefix):
            return path_source
    return source


def _referrer_uncached(referrer: str) -> tuple[str, Source | None]:
    host, path = _split(referrer.strip())
    return (host, _external_source(host, path)) if host else ("", None)


_referrer_cached = lru_cache(maxsize=16_384)(_referrer_uncached)
_MAX_CACHED_REFERRER = 512


def _referrer(referrer: str) -> tuple[str, Source | None]:
    """The referrer's host and its Source if the referrer were external (cached per referrer)."""
    if len(referrer) > _MAX_CACHED_REFERRER:
        return _referrer_uncached(referrer)
    return _referrer_cached(referrer)


@lru_cache(maxsize=4096)
def _tagged(value: str) -> tuple[str, Channel | None]:
    """A tagged source name, normalised when known, and its channel if known."""
    name = " ".join(value.split())[:MAX_NAME_LENGTH]
    key = name.lower()
    known = _NAMES.get(key)
    if known is not None:
        return known
    if key in _EMAIL_NAMES:
        return name, "email"
    host = _split(key)[0] if "://" in key else key.partition("/")[0]
    if _BARE_HOST.match(host):
        found = lookup_host(host)
        if found is not None:
            return found
        return (host[4:] if host.startswith("www.") else host), None
    return name, None


def _medium_channel(medium: str) -> Channel | None:
    """The channel a utm_medium value names ("search" for "organic"), or None."""
    if not medium:
        return None
    if medium in _PAID_MEDIA or medium.startswith("paid"):
        return "paid"
    if medium in _EMAIL_MEDIA:
        return "email"
    if medium in _SOCIAL_MEDIA:
        return "social"
    if medium == "organic":
        return "search"
    if medium in _REFERRAL_MEDIA:
        return "referral"
    return None


SiteHostnames = Callable[[str], bool] | Collection[str]


def _site_suffixes_uncached(site_hostnames: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """(bare hostname, "." + bare hostname) of each site hostname, "www." dropped."""
    out = []
    for site in site_hostnames:
        bare = site.strip().lower().rstrip(".").removeprefix("www.")
        if bare:
            out.append((bare, "." + bare))
    return tuple(out)


_site_suffixes = lru_cache(maxsize=1024)(_site_suffixes_uncached)


def _is_self(host: str, site_hostnames: SiteHostnames) -> bool:
    if callable(site_hostnames):
        return bool(site_hostnames(host))
    if isinstance(site_hostnames, frozenset | tuple):
        sites = _site_suffixes(site_hostnames)
    else:  # not hashable (a list, a set): not cached
        sites = _site_suffixes_uncached(site_hostnames)
    bare = host.removeprefix("www.")
    for site, dotted in sites:  # noqa: SIM110 - a plain loop costs half of any() over a generator
        if bare == site or bare.endswith(dotted):
            return True
    return False


def _param(query: Mapping[str, str], name: str) -> str:
    value = query.get(name)
    return value.strip() if value else ""


def classify(referrer: str, page_query: Mapping[str, str], site_hostnames: SiteHostnames = ()) -> Source:
    """The source and channel of a visit.

    ``referrer`` is the Referer (``document.referrer``), "" if none; ``page_query`` the landing
    page's query parameters; ``site_hostnames`` the site's own hostnames (subdomains included)
    or a predicate telling whether a hostname is the site's.
    """
    host, external = _referrer(referrer) if referrer else ("", None)
    if external is not None and _is_self(host, site_hostnames):
        external = None

    if page_query and not _TAG_PARAMETERS.isdisjoint(page_query):
        utm_source = _param(page_query, "utm_source")
        utm_medium = _param(page_query, "utm_medium").lower()
        click: _Known | None = None
        for parameter, entry in _CLICK_IDS:
            if parameter in page_query:
                click = entry
                break
        if utm_source or utm_medium or click:
            tagged_name, tagged_channel = _tagged(utm_source) if utm_source else ("", None)
            name = tagged_name or (click[0] if click else "") or (external.source if external else "")
            medium = _medium_channel(utm_medium)
            channel: Channel
            if utm_medium == "organic":
                # Organic search only from a search engine; organic social stays social.
                if tagged_channel in ("search", "social"):
                    channel = tagged_channel
                elif not utm_source and external is not None and external.channel in ("search", "social"):
                    channel = external.channel
                else:
                    channel = "referral"
            elif medium is not None:
                channel = medium
            elif click is not None:
                channel = click[1]
            elif tagged_channel is not None:
                channel = tagged_channel
            elif external is not None:
                channel = external.channel
            else:
                channel = "referral"
            return Source(name, channel)

        for parameter in ("ref", "via", "source"):
            value = _param(page_query, parameter)
            if value:
                tagged_name, tagged_channel = _tagged(value)
                if tagged_name and not _is_self(tagged_name.lower(), site_hostnames):
                    fallback = external.channel if external is not None else "referral"
                    return Source(tagged_name, tagged_channel or fallback)
                break

    return external if external is not None else DIRECT
