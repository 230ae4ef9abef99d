"""Conversation-aware cancellation: a seller agreeing to cancel after the buyer asked is no
cancellation request ([[asked_first]] in the rules file). Examples written for these tests."""

from __future__ import annotations

import pandas as pd
import pytest

from cs_metrics.errors import InputError
from cs_metrics.scan.scanner import load_rules, scan_messages, scanned_roles

T0 = pd.Timestamp("2026-03-02 09:00", tz="UTC")
CANCEL = "order_cancellation_request"


@pytest.fixture(scope="module")
def rules():
    return load_rules()


def chat(*rows: tuple[str, str, str]) -> pd.DataFrame:
    """Messages from (conversation_id, sender_role, content) rows, one minute apart."""
    return pd.DataFrame(
        {
            "shop_id": pd.array(["s1"] * len(rows), dtype="string"),
            "conversation_id": pd.array([r[0] for r in rows], dtype="string"),
            "message_id": pd.array([f"m{i}" for i in range(len(rows))], dtype="string"),
            "sender_role": pd.array([r[1] for r in rows], dtype="string"),
            "sender_id": pd.array(
                ["agent1" if r[1] == "seller" else "buyer1" for r in rows], dtype="string"
            ),
            "sent_at": [T0 + pd.Timedelta(minutes=i) for i in range(len(rows))],
            "content": pd.array([r[2] for r in rows], dtype="string"),
        }
    )


def cancel_findings(rules, frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(message_id, rule_id) of each order_cancellation_request finding."""
    out = scan_messages(frame, rules)
    out = out.loc[out["category"] == CANCEL]
    return list(zip(out["message_id"], out["rule_id"], strict=True))


# (language, the buyer asking to cancel, the seller's reply that alone reads as a request)
CASES = [
    (
        "en",
        "Hi, I want to cancel my order, ordered the wrong colour",
        "OK, please cancel it from your side",
    ),
    ("en", "can i cancel? no longer need it", "Sure sis, cancel ya, we will not ship"),
    ("ms", "Saya nak cancel order ni, tersalah saiz", "Ok sis, tolong batalkan dari app ya"),
    ("id", "Kak, mau batalin pesanan saya bisa?", "Boleh kak, silakan batalkan pesanannya ya kak"),
    ("vi", "Shop ơi mình muốn hủy đơn này", "Dạ vâng, bạn hủy giúp shop nhé"),
    ("vi", "shop oi cho minh huy don nha", "Da ban huy don giup shop nhe"),
    ("th", "ขอยกเลิกคำสั่งซื้อค่ะ สั่งผิดสี", "ได้ค่ะ รบกวนกดยกเลิกคำสั่งซื้อได้เลยค่ะ"),
    ("tl", "Pa-cancel po ng order ko, mali yung size", "Sige po, paki-cancel na lang po sa app"),
]


@pytest.mark.parametrize(("language", "buyer", "seller"), CASES)
def test_seller_reply_alone_is_a_request(rules, language, buyer, seller):
    """The examples are meaningful: each seller reply is a finding without the buyer's ask."""
    assert cancel_findings(rules, chat(("c1", "seller", seller)))


@pytest.mark.parametrize(("language", "buyer", "seller"), CASES)
def test_buyer_asked_first_no_finding(rules, language, buyer, seller):
    frame = chat(("c1", "buyer", buyer), ("c1", "seller", seller))
    assert cancel_findings(rules, frame) == []


@pytest.mark.parametrize(("language", "buyer", "seller"), CASES)
def test_seller_asked_first_then_buyer_agreed_is_a_finding(rules, language, buyer, seller):
    frame = chat(("c1", "seller", seller), ("c1", "buyer", buyer))
    assert [m for m, _ in cancel_findings(rules, frame)] == ["m0"]


@pytest.mark.parametrize(("language", "buyer", "seller"), CASES)
def test_buyer_asked_in_another_conversation_is_a_finding(rules, language, buyer, seller):
    frame = chat(("c1", "buyer", buyer), ("c2", "seller", seller))
    assert [m for m, _ in cancel_findings(rules, frame)] == ["m1"]


def test_same_conversation_id_in_another_shop_does_not_count(rules):
    frame = chat(("c1", "buyer", CASES[0][1]), ("c1", "seller", CASES[0][2]))
    frame["shop_id"] = pd.array(["s1", "s2"], dtype="string")
    assert [m for m, _ in cancel_findings(rules, frame)] == ["m1"]


def test_request_before_the_scanned_messages_does_not_count(rules):
    """Only the messages given are seen: the buyer's ask of last week is not in this week's
    data, so this week's reply stays a finding."""
    frame = chat(("c1", "buyer", CASES[0][1]), ("c1", "seller", CASES[0][2]))
    assert [m for m, _ in cancel_findings(rules, frame.iloc[1:])] == ["m1"]


def test_only_replies_after_the_request_are_answers(rules):
    frame = chat(
        ("c1", "seller", "Please cancel the order, we are out of stock"),
        ("c1", "buyer", "ok i want to cancel then"),
        ("c1", "seller", "Thanks, please cancel it in the app"),
    )
    assert [m for m, _ in cancel_findings(rules, frame)] == ["m0"]


@pytest.mark.parametrize(
    ("language", "buyer"),
    [
        ("en", "I don't want to cancel, just ship it"),
        ("ms", "Jangan cancel ya, saya tunggu"),
        ("vi", "Đừng hủy đơn nha shop, mình vẫn lấy"),
        ("th", "ไม่ต้องยกเลิกนะคะ รอได้ค่ะ"),
        ("tl", "Huwag po i-cancel, hihintayin ko"),
        ("en", "When will my parcel arrive?"),
    ],
)
def test_buyer_not_asking_to_cancel_changes_nothing(rules, language, buyer):
    frame = chat(("c1", "buyer", buyer), ("c1", "seller", "Sorry, please cancel the order"))
    assert [m for m, _ in cancel_findings(rules, frame)] == ["m1"]


def test_cancel_and_go_direct_stays_even_when_the_buyer_asked(rules):
    frame = chat(
        ("c1", "buyer", "I want to cancel my order"),
        ("c1", "seller", "Ok cancel it, then transfer to my GCash directly, cheaper"),
    )
    assert cancel_findings(rules, frame) == [("m1", "cancel.then_go_direct")]


def test_other_categories_of_the_reply_stay(rules):
    frame = chat(
        ("c1", "buyer", "can i cancel my order?"),
        ("c1", "seller", "OK please cancel. Any other question, mail help.shopx@gmail.com"),
    )
    found = scan_messages(frame, rules)
    assert list(found["category"]) == ["off_platform_contact"]


def test_the_scan_reads_buyer_messages_for_it(rules):
    assert "buyer" in scanned_roles(rules)
    assert "buyer" not in {
        r for rule in rules.rules if rule.category != "buyer_abuse" for r in rule.roles
    }


def test_findings_of_buyers_themselves_are_unchanged(rules):
    """With buyer_abuse on, a buyer's own messages are still scanned as before."""
    frame = chat(("c1", "buyer", "I want to cancel, or I'll report your shop to the police"))
    found = scan_messages(frame, rules, include_buyer_abuse=True)
    assert list(found["category"]) == ["buyer_abuse"]


ENTRY = (
    '[[asked_first]]\nid = "x"\ncategory = "order_cancellation_request"\n'
    'patterns = ["a"]\nrationale = "r"\n'
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[[asked_first]]\nid = "x"\ncategory = "nope"\npatterns = ["a"]\nrationale = "r"\n',
            "unknown category",
        ),
        (
            ENTRY + 'keep_rules = ["no.such"]\n',
            "keep_rules names no rule",
        ),
        (
            ENTRY + 'neutralise = ["no.such"]\n',
            "neutralise names no neutraliser",
        ),
        (
            ENTRY + 'keep_rules = ["contact.link"]\n',
            "are not rules of its category",
        ),
        (
            '[[asked_first]]\nid = "x"\ncategory = "order_cancellation_request"\nrationale = "r"\n',
            "missing `patterns`",
        ),
    ],
)
def test_bad_asked_first_tables_are_rejected(tmp_path, body, message):
    path = tmp_path / "rules.toml"
    path.write_text('extends = "default"\n' + body)
    with pytest.raises(InputError, match=message):
        load_rules(path)


def test_user_file_can_replace_the_packaged_entry(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(
        'extends = "default"\n[[asked_first]]\nid = "cancel.buyer_asked_first"\n'
        'category = "order_cancellation_request"\npatterns = ["zzz"]\nrationale = "r"\n'
    )
    rules = load_rules(path)
    assert [a.pattern for a in rules.asked_first] == ["(?:zzz)"]
    frame = chat(("c1", "buyer", CASES[0][1]), ("c1", "seller", CASES[0][2]))
    assert [m for m, _ in cancel_findings(rules, frame)] == ["m1"]


def test_a_request_in_the_same_second_as_the_reply_counts(rules):
    """An auto-reply lands in the second of the message it answers; at one instant the buyer's
    message comes first (SPEC 2)."""
    buyer, seller = CASES[0][1], CASES[0][2]
    frame = chat(("c1", "buyer", buyer), ("c1", "auto_reply", seller))
    frame["sent_at"] = T0
    assert cancel_findings(rules, frame) == []
    frame.loc[1, "sent_at"] = T0 - pd.Timedelta(seconds=1)  # the reply a second before
    assert [m for m, _ in cancel_findings(rules, frame)] == ["m1"]
