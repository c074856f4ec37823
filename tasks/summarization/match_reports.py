"""`data=match_reports`: football match reports -> headlines, generated offline from a seed.

Each document narrates one fictional match (intro, goals in minute order with the running score, crowd, quotes, a
red card, the previous meeting's different score) and ends near its final score; the headline ("Ashby Rovers beat
Corbridge Town 2-1 as Tom Hale scores twice") needs the result, which the intro never gives, so the lead is a poor
summary while a small transformer learns the task in minutes on a CPU. `extra_sentences` pads each document with
round-ups of other matches for long-document summarization.
"""

from __future__ import annotations

import random

import attnkit
from attnkit.data.checks import check_int
from attnkit.ranges import NonNegativeInt, PositiveInt, Seed
from attnkit.text.pairs import OnLong, TextPairData, TextPairs

TOWNS = (
    "Ashby", "Brampton", "Corbridge", "Dunmere", "Eastwick", "Fallowfield", "Glenholme", "Harwood", "Ingleby",
    "Jarrowby", "Kestwick", "Longmere", "Marden", "Northolt", "Oakhampton", "Penmarsh", "Queensbury", "Redbourne",
    "Saltmarsh", "Thornbury", "Upwell", "Valehurst", "Westbridge", "Yewdale", "Amberton", "Blackmoor", "Coldharbour",
    "Denholme", "Elmsworth", "Foxbury", "Greystone", "Hollins", "Ivorby", "Kirkdale", "Lowther", "Millbrook",
    "Netherby", "Oxcombe", "Pelham", "Rushmere",
)  # fmt: skip
SUFFIXES = ("Rovers", "United", "Athletic", "Town", "City", "Albion")
GROUNDS = ("Park", "Road", "Lane", "Stadium")
FIRST_NAMES = (
    "John", "Tom", "Mark", "Luke", "Sam", "Ben", "Jack", "Adam", "Ryan", "Dan", "Chris", "Paul", "Lee", "Gary",
    "Kevin", "Jamie", "Liam", "Owen", "Scott", "Neil", "Craig", "Dean", "Ross", "Kyle", "Aaron", "Callum", "Ethan",
    "Harry", "Joe", "Matt", "Nathan", "Oliver", "Rob", "Sean", "Steve", "Tony", "Will", "Alex", "Carl", "Ian",
)  # fmt: skip
SURNAMES = (
    "Hale", "Baker", "Carter", "Dixon", "Ellis", "Fisher", "Grant", "Holt", "Irwin", "Jenkins", "Kemp", "Lowe",
    "Mason", "Naylor", "Osborne", "Pike", "Quinn", "Reid", "Shaw", "Tate", "Vickers", "Walsh", "Yates", "Abbott",
    "Barlow", "Crane", "Doyle", "Foster", "Gibson", "Hughes", "Kerr", "Lambert", "Moss", "Nolan", "Parry", "Rowe",
    "Sutton", "Thorne", "Webb", "Young",
)  # fmt: skip
WEATHER = ("in the rain", "in bright sunshine", "on a cold afternoon", "in a strong wind", "under grey skies")
DAYS = (("Saturday", "afternoon"), ("Saturday", "afternoon"), ("Sunday", "afternoon"), ("Tuesday", "evening"))
MONTHS = ("August", "September", "October", "November", "December", "January", "February", "March", "April")
QUOTES = {
    "win": ("We deserved the three points", "The lads worked incredibly hard today", "That was our best display"),
    "loss": ("We were second best today", "We have to be better than that", "It is a tough one to take"),
    "draw": ("A point is a fair result", "We will take the point and move on", "Both teams had their chances"),
}
GOAL_WEIGHTS = (27, 33, 23, 11, 6)  # 0-4 goals per side
SCORER_WEIGHTS = (50, 30, 20)  # three possible scorers per side: braces and hat-tricks happen


@attnkit.register("data", "match_reports")
class MatchReportsData(TextPairData):
    """Match reports -> headlines ("document" -> "summary"), offline and deterministic from `seed`.

    Validation, test and train (`val_size`, `test_size`, `train_size` pairs) are drawn in that order from one stream
    seeded by `seed`, with no document repeated. `extra_sentences` distractors (results elsewhere, league news) are
    inserted after each intro from a second stream, so documents grow (about 12 words each) while their matches and
    headlines stay the same. `batch_size`, `max_tokens`, `on_long` and `max_source_len`: see `TextPairData`.
    """

    def __init__(
        self,
        batch_size: PositiveInt = 64,
        max_tokens: PositiveInt | None = None,
        train_size: PositiveInt = 8000,
        val_size: PositiveInt = 500,
        test_size: PositiveInt = 500,
        seed: Seed = 0,
        extra_sentences: NonNegativeInt = 0,
        on_long: OnLong = "truncate",
        max_source_len: PositiveInt | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, max_tokens=max_tokens, on_long=on_long, max_source_len=max_source_len)
        for key, value in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
            check_int(key, value, minimum=1)
        check_int("seed", seed, minimum=0)
        check_int("extra_sentences", extra_sentences, minimum=0)
        self.sizes = {"val": val_size, "test": test_size, "train": train_size}
        self.seed, self.extra_sentences = seed, extra_sentences

    def _load(self) -> TextPairs:
        rng = random.Random(self.seed)
        extra_rng = random.Random(f"match_reports extras {self.seed}")
        seen: set[str] = set()
        splits: dict[str, list[tuple[str, str]]] = {}
        for split, size in self.sizes.items():
            pairs = []
            while len(pairs) < size:
                sentences, headline, towns = draw_match(rng)
                if (report := " ".join(sentences)) in seen:
                    continue
                seen.add(report)
                elsewhere = [town for town in TOWNS if town not in towns]
                for _ in range(self.extra_sentences):
                    sentences.insert(extra_rng.randint(1, len(sentences)), extra_sentence(extra_rng, elsewhere))
                pairs.append((" ".join(sentences), headline))
            splits[split] = pairs
        return TextPairs(train=splits["train"], val=splits["val"], test=splits["test"], src="document", tgt="summary")


def draw_match(rng: random.Random) -> tuple[list[str], str, set[str]]:
    """One match: its report's sentences, its headline and the two towns (kept out of the distractors)."""
    home_town, away_town = rng.sample(TOWNS, 2)
    teams = (f"{home_town} {rng.choice(SUFFIXES)}", f"{away_town} {rng.choice(SUFFIXES)}")
    home, away, ground = *teams, ground_of(home_town)
    names = zip(rng.sample(FIRST_NAMES, 9), rng.sample(SURNAMES, 9), strict=True)  # nobody shares a name
    people = [f"{first} {last}" for first, last in names]
    squads, managers, sent_off = (people[0:3], people[3:6]), people[6:8], people[8]
    h, a = rng.choices(range(5), GOAL_WEIGHTS, k=2)
    sides = [0] * h + [1] * a  # who scored each goal, in minute order
    rng.shuffle(sides)
    minutes = sorted(rng.sample(range(1, 91), h + a))
    scorers = [rng.choices(squads[side], SCORER_WEIGHTS)[0] for side in sides]
    day, part = rng.choice(DAYS)

    intro = rng.choice(
        (
            f"{home} welcomed {away} to {ground} on {day}.",
            f"{away} travelled to {ground} to face {home} on {day} {part}.",
            f"On {day} {part}, {home} hosted {away} at {ground}.",
            f"There was a lively atmosphere at {ground} on {day} as {home} took on {away}.",
            f"{ground} was the venue on {day} {part} as {home} played host to {away}.",
        )
    )
    score, goals = [0, 0], []
    for minute, side, scorer in zip(minutes, sides, scorers, strict=True):
        score[side] += 1
        goals.append(goal_sentence(rng, scorer, teams[side], score[side], score[1 - side], minute))
    crowd, weather = f"{rng.randint(800, 32000):,}", rng.choice(WEATHER)
    others = [
        rng.choice(
            (
                f"A crowd of {crowd} watched {weather}.",
                f"The attendance was {crowd}, {weather}.",
                f"{crowd} supporters turned out {weather} at {ground}.",
            )
        ),
        previous_meeting(rng, teams, ground, (max(h, a), min(h, a))),
    ]
    quoted = rng.randrange(2)
    outcome = "draw" if h == a else "win" if (h > a) == (quoted == 0) else "loss"
    others.append(f"'{rng.choice(QUOTES[outcome])},' said {teams[quoted]} manager {managers[quoted]}.")
    if rng.random() < 0.2:
        team = rng.choice(teams)
        others.append(
            rng.choice(
                (
                    f"{sent_off} was sent off for {team} in the second half.",
                    f"{team} finished with ten men after {sent_off} was shown a red card.",
                    f"{sent_off} saw red for {team} shortly after the break.",
                )
            )
        )
    rng.shuffle(others)
    body, narrative = [], list(goals)  # the goals keep their order, the other sentences fall in between
    while narrative or others:
        pool = narrative if not others or (narrative and rng.random() < 0.5) else others
        body.append(pool.pop(0))
    before_last = rng.random() < 0.3 and body[-1] not in goals  # the final score ends the report, or nearly
    body.insert(len(body) - 1 if before_last else len(body), final_sentence(rng, teams, h, a))
    return [intro, *body], headline(teams, h, a, scorers), {home_town, away_town}


def goal_sentence(rng: random.Random, player: str, team: str, ours: int, theirs: int, minute: int) -> str:
    """One goal, worded by the running score of the scoring `team` after it (`ours`-`theirs`)."""
    m, now = f"{ordinal(minute)} minute", f"{ours}-{theirs}"
    if ours == 1 and theirs == 0:
        options = (f"{player} opened the scoring for {team} in the {m}.", f"In the {m}, {player} put {team} ahead.")
    elif ours == theirs:
        options = (
            f"{player} equalised for {team} in the {m}.",
            f"{team} drew level at {now} in the {m} through {player}.",
        )
    elif ours == theirs + 1:
        options = (f"{player} put {team} {now} ahead in the {m}.", f"In the {m}, {player} made it {now} to {team}.")
    elif ours == 2 and theirs == 0:
        options = (f"{player} doubled the lead for {team} in the {m}.", f"{player} made it 2-0 to {team} in the {m}.")
    elif ours > theirs:
        options = (
            f"{player} extended the {team} lead to {now} in the {m}.",
            f"In the {m}, {player} made it {now} to {team}.",
        )
    else:
        options = (
            f"{player} pulled one back for {team} in the {m}.",
            f"{player} made it {theirs}-{ours} with a goal for {team} in the {m}.",
        )
    return rng.choice(options)


def previous_meeting(rng: random.Random, teams: tuple[str, str], ground: str, result: tuple[int, int]) -> str:
    """The sides' last meeting, with a score other than today's (a distractor)."""
    past = result
    while past == result:
        past = tuple(sorted(rng.choices(range(5), GOAL_WEIGHTS, k=2), reverse=True))
    score, month = f"{past[0]}-{past[1]}", rng.choice(MONTHS)
    if past[0] == past[1]:
        options = (
            f"The sides last met in {month}, when the game ended {score}.",
            f"The previous meeting at {ground} finished {score}.",
        )
    else:
        winner = rng.choice(teams)
        options = (
            f"The sides last met in {month}, when {winner} won {score}.",
            f"When the teams met last season, {winner} won {score}.",
        )
    return rng.choice(options)


def final_sentence(rng: random.Random, teams: tuple[str, str], h: int, a: int) -> str:
    if h == a == 0:
        options = ("Neither side could find a way through.", "The match finished goalless.", "It ended 0-0.")
    elif h == a:
        options = (
            f"It finished {h}-{a}.",
            f"The points were shared after a {h}-{a} draw.",
            f"The match ended all square at {h}-{a}.",
        )
    else:
        (winner, won), (loser, lost) = by_score(teams, (h, a))
        options = (
            f"It finished {won}-{lost}.",
            f"The match ended {won}-{lost} to {winner}.",
            f"{winner} held on to win {won}-{lost}.",
            f"Full time: {winner} {won}, {loser} {lost}.",
        )
    return rng.choice(options)


def headline(teams: tuple[str, str], h: int, a: int, scorers: list[str]) -> str:
    """The result; for a win, also the player who first reached the most goals, if two or more."""
    if h == a:
        return f"{teams[0]} and {teams[1]} " + (f"draw {h}-{a}" if h else "play out goalless draw")
    (winner, won), (loser, lost) = by_score(teams, (h, a))
    counts: dict[str, int] = {}
    star, most = "", 0
    for scorer in scorers:
        counts[scorer] = counts.get(scorer, 0) + 1
        if counts[scorer] > most:  # strictly more: a tie keeps the first to get there
            star, most = scorer, counts[scorer]
    feat = {2: "scores twice", 3: "hits a hat-trick", 4: "scores four"}.get(most)
    return f"{winner} beat {loser} {won}-{lost}" + (f" as {star} {feat}" if feat else "")


def extra_sentence(rng: random.Random, towns: list[str]) -> str:
    """A distractor about two of `towns` (not the main match's): a result elsewhere, or a line of league news."""
    one, two = rng.sample(towns, 2)
    teams = (f"{one} {rng.choice(SUFFIXES)}", f"{two} {rng.choice(SUFFIXES)}")
    h, a = rng.choices(range(5), GOAL_WEIGHTS, k=2)
    (winner, won), (loser, lost) = by_score(teams, (h, a))
    player, home, ground = f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}", teams[0], ground_of(one)
    if h == a:
        result = f"Elsewhere, {home} and {teams[1]} drew {h}-{a} at {ground}."
    else:
        result = f"Elsewhere, {winner} beat {loser} {won}-{lost} at {ground}."
    options = (
        result,
        result,
        f"{home} remain {ordinal(rng.randint(1, 24))} in the table on {rng.randint(3, 70)} points.",
        f"{home} will be without {player} for the next {rng.randint(2, 6)} games through injury.",
        f"{player} of {home} has signed a new contract with the club.",
        f"{home} have not lost at {ground} since {rng.choice(MONTHS)}.",
    )
    return rng.choice(options)


def by_score(teams: tuple[str, str], goals: tuple[int, int]) -> list[tuple[str, int]]:
    """(team, goals) of the winner, then of the loser (home first on a draw)."""
    return sorted(zip(teams, goals, strict=True), key=lambda team: -team[1])


def ground_of(town: str) -> str:
    """The town's ground, always the same one."""
    return f"{town} {GROUNDS[TOWNS.index(town) % len(GROUNDS)]}"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
