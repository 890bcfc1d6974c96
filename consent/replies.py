"""What we text back to a keyword: the clinic's name and the way back, in one SMS segment."""

from __future__ import annotations

from consent.keywords import Keyword


def opted_out(clinic_name: str) -> str:
    return (
        f"{clinic_name}: you are opted out and will get no more automated calls or texts "
        "from us. Reply START to opt back in."
    )


def opted_in(clinic_name: str) -> str:
    return (
        f"{clinic_name}: you are opted back in to automated calls and texts from us. "
        "Reply STOP to opt out."
    )


def help_text(clinic_name: str) -> str:
    return (
        f"{clinic_name}: call this number to reach the clinic. Reply STOP to opt out of "
        "automated calls and texts, START to opt back in."
    )


def for_keyword(keyword: Keyword, clinic_name: str) -> str:
    return {
        Keyword.OPT_OUT: opted_out,
        Keyword.OPT_IN: opted_in,
        Keyword.HELP: help_text,
    }[keyword](clinic_name)
