from __future__ import annotations

import pytest
import ua_parser
from crawlerdetect import CrawlerDetect

from datafast.lib import ua
from datafast.lib.ua import MAX_USER_AGENT_LENGTH, UserAgent, parse_user_agent

# Real User-Agent strings → (browser, browser_version, os, os_version, device, is_bot).
CASES: dict[str, tuple[str, tuple[str, str, str, str, str, bool]]] = {
    "chrome_windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        ("Chrome", "131.0", "Windows", "10", "desktop", False),
    ),
    "chrome_mac": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        ("Chrome", "131.0", "macOS", "10.15", "desktop", False),
    ),
    "firefox_windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ("Firefox", "133.0", "Windows", "10", "desktop", False),
    ),
    "firefox_linux": (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ("Firefox", "133.0", "Linux", "", "desktop", False),
    ),
    "safari_mac": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Safari/605.1.15",
        ("Safari", "18.1", "macOS", "10.15", "desktop", False),
    ),
    "edge_windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70",
        ("Edge", "131.0", "Windows", "10", "desktop", False),
    ),
    "opera_windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
        ("Opera", "115.0", "Windows", "10", "desktop", False),
    ),
    "chrome_chromeos": (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        ("Chrome", "131.0", "ChromeOS", "14541.0", "desktop", False),
    ),
    "ie11_windows7_tablet_pc_token": (
        "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; SLCC2; .NET CLR 2.0.50727; Tablet PC 2.0; "
        "rv:11.0) like Gecko",
        ("IE", "11.0", "Windows", "7", "desktop", False),
    ),
    "iphone_safari": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Mobile/15E148 Safari/604.1",
        ("Safari", "18.1", "iOS", "18.1", "mobile", False),
    ),
    "iphone_chrome": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        ("Chrome", "131.0", "iOS", "17.7", "mobile", False),
    ),
    "iphone_facebook_in_app": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.38.108;FBBV/620061745;FBDV/iPhone15,2;FBMD/iPhone;"
        "FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
        ("Facebook", "470.0", "iOS", "17.5", "mobile", False),
    ),
    "android_chrome_reduced": (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        ("Chrome", "131.0", "Android", "10", "mobile", False),
    ),
    "android_chrome_pixel": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.6778.81 Mobile Safari/537.36",
        ("Chrome", "131.0", "Android", "14", "mobile", False),
    ),
    "android_samsung_internet": (
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        ("Samsung Internet", "26.0", "Android", "14", "mobile", False),
    ),
    "android_firefox": (
        "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
        ("Firefox", "133.0", "Android", "14", "mobile", False),
    ),
    "ipad_safari": (
        "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.7 Mobile/15E148 Safari/604.1",
        ("Safari", "17.7", "iOS", "17.7", "tablet", False),
    ),
    "android_tablet_chrome": (
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        ("Chrome", "131.0", "Android", "13", "tablet", False),
    ),
    "android_tablet_firefox": (
        "Mozilla/5.0 (Android 13; Tablet; rv:133.0) Gecko/133.0 Firefox/133.0",
        ("Firefox", "133.0", "Android", "13", "tablet", False),
    ),
    "kindle_fire_silk": (
        "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/131.4.1 "
        "like Chrome/131.0.6778.135 Safari/537.36",
        ("Amazon Silk", "131.4", "Android", "11", "tablet", False),
    ),
    "electron_app_with_own_token": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Code/1.95.3 Chrome/128.0.6613.186 Electron/32.2.1 Safari/537.36",
        ("Electron", "32.2", "macOS", "10.15", "desktop", False),
    ),
    # bots, crawlers, automation
    "googlebot": (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        ("Googlebot", "2.1", "", "", "bot", True),
    ),
    "googlebot_smartphone": (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
        "+http://www.google.com/bot.html)",
        ("Googlebot", "2.1", "Android", "6.0", "bot", True),
    ),
    "bingbot": (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
        "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
        ("bingbot", "2.0", "", "", "bot", True),
    ),
    "gptbot": (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; GPTBot/1.2; +https://openai.com/gptbot",
        ("GPTBot", "1.2", "", "", "bot", True),
    ),
    "yandexbot": (
        "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        ("YandexBot", "3.0", "", "", "bot", True),
    ),
    "curl": ("curl/8.5.0", ("curl", "8.5", "", "", "bot", True)),
    "python_requests": ("python-requests/2.32.3", ("Python Requests", "2.32", "", "", "bot", True)),
    "go_http_client": ("Go-http-client/1.1", ("Go-http-client", "1.1", "", "", "bot", True)),
    "headless_chrome": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/131.0.0.0 Safari/537.36",
        ("HeadlessChrome", "131.0", "Windows", "10", "bot", True),
    ),
    "lighthouse_pagespeed": (
        "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
        ("Chrome", "131.0", "Android", "11", "bot", True),
    ),
    "phantomjs": (
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 "
        "Safari/538.1",
        ("PhantomJS", "2.1", "Linux", "", "bot", True),
    ),
    "bare_electron_shell": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/130.0.6723.118 Electron/33.2.0 Safari/537.36",
        ("Electron", "33.2", "Linux", "", "bot", True),
    ),
    "empty": ("", ("", "", "", "", "bot", True)),
    "blank": ("   ", ("", "", "", "", "bot", True)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_real_user_agents(name: str) -> None:
    header, expected = CASES[name]
    result = parse_user_agent(header)
    assert (
        result.browser,
        result.browser_version,
        result.os,
        result.os_version,
        result.device,
        result.is_bot,
    ) == expected


@pytest.mark.parametrize(
    "header",
    [
        "Wget/1.21.4",
        "axios/1.7.7",
        "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
        "okhttp/4.12.0",
        "Java/17.0.2",
        "Apache-HttpClient/4.5.14 (Java/17.0.8)",
        "python-httpx/0.28.1",
        "Python-urllib/3.11",
        "Scrapy/2.11.2 (+https://scrapy.org)",
        "PostmanRuntime/7.42.0",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
        "Safari/537.36 Cypress/13.15.0",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Twitterbot/1.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 (compatible; GoogleOther)",
        # monitors, feed readers, link previewers that only crawler-user-agents' list knows
        "Amazon CloudFront",
        "Mozilla/5.0 (compatible; Cloudflare-Traffic-Manager/1.0; "
        "+https://www.cloudflare.com/traffic-manager/; pool-id: AAAAAAAAAAAAAAAA)",
        "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0; AppInsights)",
        "Slack-ImgProxy 0.59 (+https://api.slack.com/robots)",
        "Uptime-Kuma/1.23.16",
        "Viber",
    ],
)
def test_other_bots_and_http_libraries(header: str) -> None:
    result = parse_user_agent(header)
    assert result.is_bot
    assert result.device == "bot"


def test_result_is_a_frozen_struct() -> None:
    result = parse_user_agent(CASES["chrome_windows"][0])
    assert isinstance(result, UserAgent)
    with pytest.raises(AttributeError):
        result.browser = "x"  # type: ignore[misc]


def test_repeated_user_agents_come_from_the_cache() -> None:
    header = CASES["iphone_safari"][0]
    assert parse_user_agent(header) is parse_user_agent(header)


def test_long_user_agents_are_cut_before_parsing() -> None:
    header = CASES["chrome_windows"][0]
    long_header = header + " X" * MAX_USER_AGENT_LENGTH
    assert parse_user_agent(long_header) == parse_user_agent(long_header[:MAX_USER_AGENT_LENGTH])
    assert parse_user_agent(long_header).browser == "Chrome"


def test_native_accelerators_are_in_use() -> None:
    # ua-parser-rs installs and works: ua-parser and the bot patterns both run on it.
    from ua_parser.regex import Resolver as RustResolver

    assert ua_parser.RegexResolver is RustResolver
    assert isinstance(ua._resolver, RustResolver)
    assert ua._is_crawler.crawlers.native
    assert ua._crawler_list.native
    assert ua._AUTOMATION.native


_PYTHON_ONLY = ua._CrawlerDetector(native=False)


@pytest.mark.parametrize("name", list(CASES))
def test_crawler_verdicts_match_crawlerdetect(name: str) -> None:
    header = CASES[name][0]
    if not header.strip():
        return  # crawlerdetect says "not a crawler" for an empty UA; we call it a bot on purpose
    expected = CrawlerDetect().is_crawler(header)
    assert ua._is_crawler(header.lower()) == expected
    assert _PYTHON_ONLY(header.lower()) == expected


def test_patterns_rust_cannot_run_stay_with_python_re() -> None:
    patterns = ua._PatternSet(["Yandex(?!Search)", "^Example Bot", r"\bJava/\d"])
    assert patterns.native
    assert patterns.search("yandexbot/3.0")
    assert not patterns.search("yandexsearch/8.10")
    assert patterns.search("example bot/1.0")
    assert not patterns.search("an example bot")
    assert patterns.search("java/17")
    assert not patterns.search("java/x")


def test_lowercased_patterns_keep_escapes() -> None:
    assert ua._lowercase_pattern(r"Zend\\Http\\Client") == r"zend\\http\\client"
    assert ua._lowercase_pattern(r"\bMSIE \D[A-Z]") == r"\bmsie \D[a-z]"
