"""The built-in `match_reports` summarization data: registered, deterministic, disjoint, and headlines that are true
to their documents but absent from their leads."""

from __future__ import annotations

import re
import statistics

import pytest
from checks import one_line

import attnkit
from attnkit.errors import ConfigError
from attnkit.registry import build_spec, defaults
from attnkit.tasks.summarization.match_reports import MatchReportsData

SMALL = {"train_size": 240, "val_size": 30, "test_size": 30}
WIN = re.compile(
    r"(?P<winner>.+) beat (?P<loser>.+) (?P<won>\d)-(?P<lost>\d)"
    r"(?: as (?P<star>.+) (?P<feat>scores twice|hits a hat-trick|scores four))?"
)
DRAW = re.compile(r"(?P<home>.+) and (?P<away>.+) draw (?P<h>\d)-(?P<a>\d)")
GOALLESS = re.compile(r"(?P<home>.+) and (?P<away>.+) play out goalless draw")
FINAL = re.compile(
    r"(?:It finished|It ended|The match ended(?: all square at)?|.+ held on to win|The points were shared after a) "
    r"(?P<won>\d)-(?P<lost>\d)(?: draw| to .+)?\.|Full time: .+ (?P<first>\d), .+ (?P<second>\d)\."
)
GOAL = re.compile(r"(\d+)(?:st|nd|rd|th) minute")
NAME = re.compile(r"\b[A-Z][a-z]+ [A-Z][a-z]+\b")
FEATS = {"scores twice": 2, "hits a hat-trick": 3, "scores four": 4}


def sentences(document: str) -> list[str]:
    return re.split(r"(?<=\.)\s+", document)


def parse(headline: str) -> tuple[dict[str, int], str | None, int]:
    """Goals by team, and the star player with their goals (None, 0 if none), as the headline tells them."""
    if match := WIN.fullmatch(headline):
        goals = {match["winner"]: int(match["won"]), match["loser"]: int(match["lost"])}
        return goals, match["star"], FEATS.get(match["feat"], 0)
    if match := DRAW.fullmatch(headline):
        assert match["h"] == match["a"] != "0", headline
        return {match["home"]: int(match["h"]), match["away"]: int(match["a"])}, None, 0
    match = GOALLESS.fullmatch(headline)
    assert match, f"unexpected headline: {headline}"
    return {match["home"]: 0, match["away"]: 0}, None, 0


@pytest.fixture(scope="module")
def pairs():
    return MatchReportsData(**SMALL).load()


def test_registered_with_defaults():
    assert attnkit.get("data", "match_reports") is MatchReportsData
    node = defaults("data", "match_reports")
    assert node["name"] == "match_reports" and node["batch_size"] == 64 and node["on_long"] == "truncate"
    assert node["train_size"] == 8000 and node["extra_sentences"] == 0 and node["seed"] == 0
    source = build_spec("data", {"name": "match_reports", "train_size": 5, "val_size": 2, "test_size": 3, "seed": 4})
    assert isinstance(source, MatchReportsData) and source.load().src == "document" and source.load().tgt == "summary"


def test_same_seed_same_pairs_other_seed_other_pairs(pairs):
    again = MatchReportsData(**SMALL).load()
    assert (again.train, again.val, again.test) == (pairs.train, pairs.val, pairs.test)
    other = MatchReportsData(**SMALL, seed=1).load()
    assert other.train != pairs.train and other.val != pairs.val


def test_splits_are_sized_and_share_no_document(pairs):
    assert (len(pairs.train), len(pairs.val), len(pairs.test)) == (240, 30, 30)
    documents = [{doc for doc, _ in pairs.split(name)} for name in ("train", "val", "test")]
    assert [len(docs) for docs in documents] == [240, 30, 30]
    assert not (documents[0] & documents[1] or documents[0] & documents[2] or documents[1] & documents[2])
    # val is drawn first: a larger train does not change it
    assert MatchReportsData(train_size=10, val_size=30, test_size=30).load().val == pairs.val


def test_headlines_tell_the_documents_result(pairs):
    seen = {"win": 0, "draw": 0, "goalless": 0, "feat": 0, "no feat": 0}
    for document, headline in pairs.train + pairs.val + pairs.test:
        goals, star, star_goals = parse(headline)
        parts = sentences(document)
        assert all(team in parts[0] for team in goals), (parts[0], headline)
        scored = {team: 0 for team in goals}
        scorers = []
        for sentence in parts:
            if not GOAL.search(sentence):
                continue
            (team,) = [team for team in goals if team in sentence]  # one team per goal sentence
            scored[team] += 1
            (scorer,) = NAME.findall(sentence.replace(team, ""))
            scorers.append(scorer)
            ours, theirs = scored[team], sum(scored.values()) - scored[team]
            if ours == theirs:
                assert "equalised" in sentence or f"level at {ours}-{theirs}" in sentence, sentence
            elif ours < theirs:
                assert "pulled one back" in sentence or f"made it {theirs}-{ours}" in sentence, sentence
            else:
                assert any(cue in sentence for cue in ("opened the scoring", "ahead", "lead", f"{ours}-{theirs}"))
        assert scored == goals, (document, headline)
        minutes = [int(GOAL.search(s)[1]) for s in parts if GOAL.search(s)]
        assert minutes == sorted(set(minutes)) and all(1 <= m <= 90 for m in minutes), minutes  # in order, distinct
        # the player who first reached the most goals, when that is 2 to 4 and the match was won
        most = max((scorers[: i + 1].count(s) for i, s in enumerate(scorers)), default=0)
        first = next((s for i, s in enumerate(scorers) if scorers[: i + 1].count(s) == most), None)
        h, a = goals.values()
        if h != a and most >= 2:
            assert (star, star_goals) == (first, most), (document, headline)
            seen["feat"] += 1
        else:
            assert star is None, headline
            seen["no feat"] += h != a
        if h == a == 0:
            seen["goalless"] += 1
            assert any(cue in " ".join(parts[-2:]) for cue in ("Neither side", "goalless", "0-0")), document
        else:
            won, lost = max(h, a), min(h, a)
            seen["win" if h != a else "draw"] += 1
            (match,) = [m for s in parts[-2:] if (m := FINAL.fullmatch(s))]  # near the end
            assert [int(n) for n in match.groups() if n] == [won, lost], (match[0], headline)
        previous = [s for s in parts if "last met" in s or "last season" in s or "previous meeting" in s]
        assert len(previous) == 1 and f"{max(h, a)}-{min(h, a)}" not in previous[0], previous
    assert all(count >= 10 for count in seen.values()), seen


def test_the_lead_is_a_poor_summary(pairs):
    intros = set()
    for document, headline in pairs.train:
        first, lead = sentences(document)[0], " ".join(document.split()[:8])
        score = re.search(r"\d-\d|goalless", headline)[0]
        assert score not in first and score not in lead and not re.search(r"\d", first), (first, headline)
        assert " beat " not in first and " draw" not in first, first
        intros.add(re.sub(r"[A-Z]\w+", "X", first))
    assert len(intros) >= 4, intros  # phrasings vary


def test_extra_sentences_lengthen_documents_but_keep_headlines(pairs):
    sizes = {"train_size": 12, "val_size": 4, "test_size": 4}
    loaded = {n: MatchReportsData(**sizes, extra_sentences=n).load() for n in (0, 20, 40)}
    words = {n: statistics.mean(len(doc.split()) for doc, _ in p.train) for n, p in loaded.items()}
    assert words[0] < words[20] < words[40]
    assert 0.75 < (words[40] - words[20]) / (words[20] - words[0]) < 1.33, words  # roughly linear
    short, long = loaded[0], loaded[40]
    for name in ("train", "val", "test"):
        assert [h for _, h in short.split(name)] == [h for _, h in long.split(name)]
        for (brief, _), (padded, _) in zip(short.split(name), long.split(name), strict=True):
            main, all_ = sentences(brief), sentences(padded)
            assert all_[0] == main[0] and len(all_) == len(main) + 40
            assert [s for s in all_ if s in main] == main  # the report is intact, in order, after its intro
            assert sum(bool(GOAL.search(s)) for s in all_) == sum(bool(GOAL.search(s)) for s in main)


@pytest.mark.parametrize(
    "kwargs, key",
    [({"extra_sentences": -1}, "data.extra_sentences"), ({"train_size": 0}, "data.train_size"),
     ({"val_size": 1.5}, "data.val_size"), ({"seed": "0"}, "data.seed")],
)  # fmt: skip
def test_bad_options_name_the_key(kwargs, key):
    with pytest.raises(ConfigError) as exc:
        MatchReportsData(**kwargs)
    assert key in one_line(exc)
