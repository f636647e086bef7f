"""The classifier's vocabulary: which words and phrases point to which intent.

Each group maps a term to a weight. A term is a word (``spam``), a phrase of two or
three words (``root cause``), or a word prefix ending in ``*`` (``summar*`` matches
summary, summarize, summarise, summarizing). Hyphens count as spaces, so ``one line``
also matches "one-line". Matching is case-insensitive and each term counts once.

Groups whose name starts with ``_`` are not intents but *modifiers* that move the
tier of whatever intent wins: ``_stakes`` and ``_complexity`` up, ``_brevity`` down
(for intents whose tier is above small), ``_short_horizon`` down for planning and
reasoning.

Some drafting terms only name a kind of text (``blog post``, ``article``,
``newsletter``, ``email``): in "Summarise this blog post" the post is what the task
works *on*, not what it writes. When a task says what to do with an explicit verb
of a small-tier intent (:data:`TASK_VERBS`: summar*, tl;dr, translat*, classify,
extract, ...) and nothing says a new text is written (:data:`AUTHORING_VERBS`:
write, draft, compose, ...; or "into a blog post", "as an article"), the
:data:`OBJECT_NOUNS` do not count.

The tier of each intent is in :data:`INTENT_TIERS`. The weights were set by hand on
the ``dev`` and ``holdout`` splits of ``tests/data/routing_eval.jsonl``; its ``blind``
split was written afterwards to measure what they are worth on tasks never tuned
on (see ``bench/routing_eval.py``). Add a term when a real task was misrouted, and
add that task to the set.
"""

from __future__ import annotations

from typing import Final

from guards.routing.tiers import TierName

__all__ = ["AUTHORING_VERBS", "INTENT_TIERS", "LEXICON", "OBJECT_NOUNS", "TASK_VERBS", "TOOL_VERBS"]

INTENT_TIERS: Final[dict[str, TierName]] = {
    "classification": "small",
    "extraction": "small",
    "summary": "small",
    "formatting": "small",
    "translation": "small",
    "qa": "small",
    "drafting": "medium",
    "code": "medium",
    "tool_use": "medium",
    "analysis": "medium",
    "planning": "large",
    "reasoning": "large",
    "review": "large",
}

# fmt: off
LEXICON: Final[dict[str, dict[str, float]]] = {
    "classification": {
        "sarcastic": 3, "sarcasm": 3, "score this": 2, "severity": 2.5, "grade": 2,
        "identify which": 2.5, "which of": 1.5, "duplicate": 1.5, "duplicates": 1, "mark": 1.5,
        "rubric": 2, "1 to 5": 1.5, "scale": 1, "judging": 1.5, "does this message": 2,
        "is the following": 1.5, "detect": 2, "into bug": 1.5, "bucket these": 2, "sort into": 2,
        "classify": 3, "classif*": 3, "categoriz*": 3, "categoris*": 3, "category": 2,
        "categories": 2, "label": 2.5, "labels": 2, "labeling": 2.5, "labelling": 2.5, "tag": 2,
        "tags": 1, "tagging": 2, "sentiment": 2.5, "spam": 3, "toxicity": 3, "toxic": 2,
        "clickbait": 3, "moderate": 2.5, "moderation": 2.5, "detect the language": 3,
        "which language": 2, "priority": 1.5, "urgent": 1, "bucket": 1.5, "triage": 2,
        "route this": 2, "right team": 2, "decide whether": 1.5, "determine if": 1,
        "determine whether": 1, "flag whether": 2, "true or false": 1.5, "fits": 1,
        "best matching": 1.5, "hot warm": 2, "is this": 0.5, "intent of": 1.5, "whether this": 1,
        "recurring or": 1.5, "follows": 0.5, "rate the": 1,
    },
    "extraction": {
        "pull": 2, "out of this": 2, "from this": 1, "return the": 1, "list all": 1.5,
        "quote": 1.5, "output the": 1, "mentions": 1, "payload": 1.5, "tracking number": 1.5,
        "the figure": 1.5, "versions": 1, "link in": 1.5,
        "extract": 3.5, "extracts": 3.5, "extracting": 3.5, "extraction": 3, "pull out": 3,
        "pull all": 3, "parse": 2.5, "grab": 2.5, "pick out": 3, "entities": 2.5,
        "find every": 1.5, "list the names": 2.5, "names of": 1, "mentioned": 1.5, "as json": 1.5,
        "json with": 1, "fields": 1.5, "key value": 1.5, "identify the": 1, "get the": 1,
        "line item": 1.5, "order number": 1.5, "invoice number": 2, "due date": 1,
        "just the number": 1.5, "find the": 0.5, "ids": 1, "every date": 2,
    },
    "summary": {
        "boil": 2.5, "boil this": 1, "takeaway": 3, "takeaways": 3, "what happened": 2.5,
        "highlights": 1.5, "to do list": 1.5, "short summary": 1,
        "summar*": 4, "tl dr": 4, "tldr": 4, "recap": 3.5, "condense": 3.5, "sum up": 3.5,
        "abstract": 2.5, "shorten": 3, "key points": 2.5, "gist": 3, "digest": 1.5,
        "in a nutshell": 3, "main points": 2, "what it says": 1.5, "overview of": 1.5,
    },
    "formatting": {
        "render": 1.5, "html table": 1.5, "sentence case": 3.5, "friendlier": 2, "shorter": 2,
        "replace": 2, "placeholder": 2, "placeholders": 2, "reorder": 3, "from utc": 1.5,
        "us to european": 2,
        "reformat": 4, "format": 2.5, "formatted": 2, "convert": 2, "turn this": 2,
        "turn these": 2, "into yaml": 2, "into json": 1.5, "markdown": 2, "mrkdwn": 2.5,
        "csv": 1.5, "yaml": 1.5, "json": 0.5, "table": 0.5, "pretty print": 3, "minified": 2,
        "proofread": 4, "spelling": 3, "grammar": 3, "typos": 3, "title case": 3.5,
        "normalize": 2.5, "normalise": 2.5, "escape": 2.5, "alphabetically": 3,
        "remove duplicates": 2, "wrap": 1.5, "rewrite this sentence": 3, "polite": 1.5,
        "template": 2, "fill this": 2, "strip": 2, "numbered list": 2.5, "comma separated": 2.5,
        "iso 8601": 1, "e 164": 2, "round to": 1.5, "dict literal": 2.5, "plain text": 1.5,
        "headings": 1.5, "capitalize": 2.5, "uppercase": 2, "lowercase": 2, "indent": 2,
        "snake case": 1, "camel case": 2, "rename": 1.5, "sort": 1, "fahrenheit": 1.5,
        "celsius": 1.5, "bullet list": 1, "emoji": 1, "clean up": 1,
    },
    "translation": {
        "translat*": 5, "localize": 3, "localise": 3, "in english": 1.5, "into english": 2,
        "plain english": 1.5, "english": 1, "spanish": 1.5, "french": 1.5, "german": 1.5,
        "italian": 1.5, "japanese": 1.5, "dutch": 1.5, "polish": 1.5, "korean": 1.5,
        "portuguese": 1.5, "chinese": 1.5, "pt br": 2, "mean in": 2,
    },
    "qa": {
        "according to": 2, "per the": 2, "per this": 2, "how long": 2, "can the customer": 1.5,
        "how much": 1.5, "is there": 1,
        "what is": 1.5, "what s": 1.5, "what does": 1.5, "what time": 1.5, "which port": 2,
        "how many": 1.5, "which weekday": 2.5, "define": 2.5, "stand for": 3, "leap year": 3,
        "capital of": 3, "difference between": 1, "default": 1, "answer from": 2,
        "in stock": 2, "has the order": 2, "do you": 1.5, "are we": 1, "we re open": 2,
        "is it": 1, "when is": 1.5, "who is": 1.5, "status code": 2, "by default": 1.5,
        "tell the user": 1.5, "answer the": 1, "answer this": 1.5, "question": 1,
    },
    "drafting": {
        "alt text": 3, "respond to": 1.5, "meeting minutes": 2, "outline": 2, "talk": 1,
        "article": 1, "help center article": 1, "pitch": 2, "pitching": 2, "ad copy": 3,
        "about us": 2, "negative review": 1.5,
        "draft": 3.5, "drafts": 3, "write": 1.5, "compose": 3.5, "reply": 1.5, "respond": 1,
        "email": 1.5, "emails": 1.5, "blog post": 3, "post about": 2, "linkedin": 2,
        "tweet thread": 3, "letter": 2.5, "cover letter": 2, "announcement": 2,
        "announcing": 2, "newsletter": 3, "release notes": 3, "product description": 3,
        "story": 2.5, "tone": 2, "brand voice": 3, "persuasive": 2, "copy": 1.5,
        "landing page": 2, "outreach": 3, "status update": 3, "job description": 3,
        "readme": 2, "decline": 2, "thank you": 2, "follow up": 2,
        "apologize": 2, "apologise": 2, "customer facing": 2, "subject line": 2,
        "commit message": 2, "suggest": 1, "names for": 2, "words": 0.5, "note about": 1.5,
        "faq": 1, "invitation": 1.5, "speech": 2.5, "press release": 2, "bio": 2,
        "headline": 1.5, "slogan": 2.5, "caption": 2, "welcome message": 2,
    },
    "code": {
        "cron expression": 3, "git": 2.5, "manifest": 2, "middleware": 2.5, "fixtures": 2.5,
        "hooks": 1.5, "pandas": 2.5, "loop": 1.5, "validation": 1, "view": 0.5, "off by one": 3,
        "code": 2, "function": 2.5, "python": 2, "typescript": 2, "javascript": 2, "golang": 2,
        "go": 0.5, "rust": 2, "java": 2, "bash": 2, "shell": 2, "sql": 2.5, "react": 2,
        "dockerfile": 3, "docker": 1.5, "terraform": 3, "kubernetes": 2, "helm": 2,
        "bug": 1.5, "fix": 1.5, "debug": 3, "implement": 2.5, "implementation": 2,
        "refactor": 3.5, "unit tests": 3, "tests": 1.5, "test": 1, "script": 2.5,
        "endpoint": 2.5, "api": 1, "regex": 3, "query": 1.5, "migration": 1, "ci": 2,
        "linter": 2.5, "lint": 2, "type hints": 3, "mypy": 3, "pytest": 3, "traceback": 2.5,
        "stack trace": 1.5, "class": 1.5, "module": 1.5, "async": 2, "await": 2,
        "callback": 2, "port this": 2.5, "scraper": 3, "component": 2, "compiler": 1,
        "github actions": 2.5, "workflow": 0.5, "decorator": 3, "column": 1.5, "schema": 1.5,
        "returns": 1, "exception": 1.5, "compile": 2, "build": 0.5, "deploy": 0.5,
        "repository": 0.5, "library": 1, "sdk": 2, "cli": 2, "command": 1.5, "variable": 2,
        "null pointer": 3, "segfault": 3, "memory leak": 2.5, "cron job": 1.5, "html": 1,
        "css": 2, "frontend": 2, "backend": 1, "pagination": 2, "401": 1.5, "500": 1,
        "error": 0.5, "failing": 1.5, "fails": 1, "crash": 2, "crashes": 2, "queue": 1,
    },
    "tool_use": {
        "send the": 1.5, "message the": 1.5, "clone the repo": 3, "file linear": 2,
        "create a reminder": 2, "add it to": 2, "every morning": 1.5, "scan the": 1.5,
        "search the web": 3, "web search": 3, "browser": 2, "log in": 2, "jira": 2.5,
        "stripe": 2, "calendar": 2.5, "inbox": 2.5, "google sheet": 2.5, "spreadsheet": 0.5,
        "notion": 2, "s3": 1, "bucket": 1, "sitemap": 2, "poll": 2, "book it": 2.5,
        "send an invite": 2.5, "open a ticket": 2.5, "open a github issue": 2,
        "then": 1, "each one": 1, "for each": 1.5, "each new one": 2, "one by one": 1.5,
        "publish": 1.5, "post it": 2, "post a": 1.5, "post the": 1.5, "post them": 2,
        "upload": 2, "download": 2, "look up": 1.5, "refund": 2, "tool": 2, "tools": 1,
        "api": 1, "roll back": 1.5, "notify": 2, "file them": 2, "hold the": 2, "flights": 2,
        "archive": 1.5, "assign": 1, "assigned to": 1.5, "warehouse": 1.5, "load it": 2,
    },
    "analysis": {
        "pain points": 2.5, "group the feedback": 2, "how common": 2, "grew the most": 2,
        "explain the difference": 2.5, "why it might": 1.5, "against our requirements": 2,
        "analy*": 3.5, "compare": 3, "comparison": 3, "trend": 3, "trends": 3, "themes": 3,
        "insights": 2.5, "significant": 2.5, "suggests": 2, "point out": 2, "recurring": 1.5,
        "most common": 2, "recommend": 1.5, "pros and cons": 3, "cheaper": 1.5,
        "explain why": 2, "why the query": 2, "query plan": 2.5, "interpret": 2.5,
        "correlation": 2.5, "a b test": 2.5, "variant": 1.5, "identify the main": 2,
        "patterns": 2, "what changed": 1, "cost per": 1.5, "evaluate": 2, "assess": 1,
        "metrics": 1, "breakdown": 2, "investigate": 1.5,
    },
    "planning": {
        "playbook": 3.5, "agenda": 2, "three year": 2.5, "sunset": 2, "permission model": 2.5,
        "plan": 4, "planning": 3.5, "roadmap": 4.5, "strategy": 4, "architecture": 3,
        "design a": 2.5, "design the": 2.5, "design and": 1, "phases": 2.5, "milestones": 2.5,
        "rollout": 2.5, "launch plan": 2, "timeline": 2, "workstreams": 3, "dependencies": 1,
        "sequence": 1, "propose a": 1.5, "recovery plan": 2, "rpo": 2, "rto": 2,
        "migration of": 2, "migrate": 1.5, "hiring": 1.5, "onboarding plan": 2,
        "schedule": 1, "checklist": 1, "step by step plan": 2, "okrs": 3, "budget for": 1,
        "long term": 2, "multi year": 2.5, "next quarter": 2, "next year": 1.5,
    },
    "reasoning": {
        "reconstruct": 3, "explain exactly": 3, "network partition": 3, "replicas": 1.5,
        "disagree": 1.5, "lost": 1, "losing": 1.5, "bound its": 3, "approximation": 2.5,
        "availability": 1, "weakest link": 2.5, "net positive": 2, "reason": 1.5,
        "prove": 5, "proof": 4.5, "counterexample": 4, "race condition": 4.5, "root cause": 4,
        "derive": 4, "step by step": 1.5, "optimal": 3, "optimize": 1.5, "minimizes": 3,
        "maximizes": 3, "minimize": 2.5, "maximize": 2.5, "work out": 2, "figure out": 2.5,
        "why does": 2, "edge cases": 2, "puzzle": 4, "deduction": 3.5, "deduce": 3.5,
        "constraints": 2.5, "correctness": 3, "correct under": 3, "invariant": 3,
        "monte carlo": 2.5, "probabilit*": 2, "reason through": 3.5, "intermittent": 3,
        "latency doubled": 2, "flame graphs": 2, "logic": 1.5, "riddle": 4, "theorem": 4.5,
        "complexity of": 2, "big o": 2.5, "algorithm": 1.5, "which one is wrong": 3,
        "why our": 1.5, "explain the inference": 2, "calculate": 1.5, "estimate": 1,
        "expected cost": 2.5, "deadlock": 4, "concurrency": 3, "heisenbug": 4,
    },
    "review": {
        "verify that": 3.5, "verify": 2, "consistently": 1.5, "go over": 2.5, "feedback": 2,
        "anything wrong": 2.5, "could anything": 2, "insufficient": 2, "a review": -1,
        "review": 2, "review this": 2, "review the": 2, "review our": 2, "review my": 1.5,
        "product review": -2, "this review": -1, "reviews": 1, "audit": 4.5, "auditors": 2,
        "vulnerabilit*": 3.5,
        "security": 2, "check this": 2, "check it for": 3, "check the": 1, "flag anything": 2,
        "before legal signs": 3, "before it goes": 2, "before we send": 2.5,
        "before it is deployed": 2.5, "compliance": 3, "assess this": 2.5, "risks": 1.5,
        "inconsistencies": 2.5, "interactions": 1.5, "accuracy": 1.5, "harmful": 2,
        "sign off": 1.5, "look over": 2, "critique": 3, "feedback on": 2.5,
        "suggest improvements": 2.5, "go through this": 1.5, "gaps": 1.5,
    },
    # -- modifiers -------------------------------------------------------------------
    "_stakes": {
        "general counsel": 1.5, "counsel": 1, "attorney": 1.5, "lawyer": 1, "subpoena": 1.5,
        "investigative": 1, "ftc": 1, "sec filing": 1.5, "signed by": 1,
        "tax": 1.5, "clinical": 1.5, "adverse events": 1.5, "cryptograph*": 1.5,
        "encryption": 1, "key rotation": 1, "soc 2": 1.5, "pci": 1.5, "ransomware": 1.5,
        "incident response": 1, "customer traffic": 1, "employment": 1, "unenforceable": 1.5,
        "non compete": 1, "court": 1.5, "insurance": 1, "account balance": 1,
        "legal": 1.5, "contract": 1, "contracts": 1, "liability": 1.5, "indemnit*": 1.5,
        "gdpr": 1.5, "hipaa": 1.5, "sox": 1.5, "compliance": 1, "regulator": 1.5,
        "regulatory": 1.5, "regulators": 1.5, "auditors": 1.5, "security": 1,
        "vulnerabilit*": 1, "production": 1, "financial": 1, "medical": 1.5,
        "medication": 1.5, "patient": 1.5, "mainnet": 1.5, "smart contract": 1,
        "press release": 1, "acquisition": 1, "board": 1, "binding": 1.5, "breach": 1.5,
        "iam": 1, "public access": 1, "payments": 1, "double charging": 1,
        "double charged": 0.5, "data loss": 1, "lawsuit": 1.5, "terms of service": 1,
        "must be accurate": 1, "irreversible": 1.5, "safety": 1, "authentication": 1,
        "password": 0.5, "controller": 1, "sign off": 1, "journal entries": 1,
        "reconcile": 1, "exit": 0.5, "dangerous": 1,
    },
    "_complexity": {
        "under load": 1, "network partition": 1, "multi tenant": 1.5, "inheritance": 0.5,
        "three year": 1, "24 months": 1, "arbitrarily": 1,
        "multi region": 1.5, "distributed": 1, "concurrent": 1, "concurrency": 1,
        "lock free": 2, "memory model": 1.5, "without downtime": 1.5, "sharding": 1,
        "resharding": 1, "trade offs": 1, "tradeoffs": 1, "optimal": 1, "correctness": 1,
        "all inputs": 1, "every mismatch": 1, "investigate every": 1, "edge cases": 0.5,
        "end to end": 1, "long horizon": 2, "quarters": 1, "18 months": 1, "12 months": 1,
        "across three": 0.5, "across all": 1, "from scratch": 1, "novel": 1, "ambiguous": 1,
        "taxonomy": 1.5, "propose a taxonomy": 1, "key design decisions": 1,
        "open questions": 1, "three documentation pages": 1, "interact with": 1,
        "recommendations": 0.5, "highlights the key risks": 1, "what changed since": 1,
    },
    "_brevity": {
        "one line": 2, "single line": 2, "one sentence": 1, "single sentence": 1,
        "one word": 2, "yes or no": 1, "two sentence": 2, "subject line": 2,
        "commit message": 1, "names for": 1.5, "just the number": 1, "only the": 0.5,
        "short": 1, "brief": 1, "quick": 0.5, "one liner": 2, "tiny": 1, "trivial": 1.5,
        "the message": 0.5, "deploy finished": 1, "thank you reply": 1,
    },
    "_short_horizon": {
        "my week": 2, "my day": 2, "tomorrow": 2, "tomorrow s": 2, "today": 1,
        "this afternoon": 2, "checklist": 1.5, "arrives before": 2, "train": 1,
        "packing list": 2, "minutes if": 1,
    },
}
# fmt: on

# Imperative verbs of tool-using agents: three or more distinct ones in a task
# signal a multi-step, tool-using workflow.
# fmt: off
TOOL_VERBS: Final[frozenset[str]] = frozenset(
    {
        "search", "fetch", "download", "upload", "post", "publish", "book", "send", "query",
        "poll", "open", "assign", "comment", "update", "move", "archive", "flag", "file",
        "log", "refund", "reply", "load", "create", "collect", "check", "find", "look",
        "read", "write", "build", "hold", "notify", "roll", "record", "enrich", "clean",
        "skip", "group", "compare", "watch", "investigate", "prepare", "reconcile",
    }
)
# fmt: on

# Explicit verbs of small-tier intents: a task that says one of these says what to do
# with the text it names (see OBJECT_NOUNS).
# fmt: off
TASK_VERBS: Final[frozenset[str]] = frozenset(
    {
        "summar*", "tl dr", "tldr", "recap", "condense", "sum up", "shorten",
        "translat*", "localize", "localise",
        "classify", "classif*", "categoriz*", "categoris*",
        "extract", "extracts", "extracting", "pull out", "pick out",
        "reformat", "proofread",
    }
)
# fmt: on

# Drafting terms that say a new text is being written: with one of these, the
# OBJECT_NOUNS name what is written and count as usual.
AUTHORING_VERBS: Final[frozenset[str]] = frozenset(
    {"draft", "drafts", "write", "compose", "respond to", "respond", "reply"}
)

# Drafting terms that only name a kind of text. They do not count when a TASK_VERB is
# present and no AUTHORING_VERB is (nor "into a" / "as a" before them).
# fmt: off
OBJECT_NOUNS: Final[frozenset[str]] = frozenset(
    {
        "article", "help center article", "blog post", "post about", "newsletter", "email",
        "emails", "letter", "cover letter", "announcement", "story", "release notes",
        "press release", "product description", "job description", "status update",
        "tweet thread", "linkedin", "landing page", "readme", "faq", "speech", "bio",
        "headline", "caption", "meeting minutes", "invitation", "welcome message",
    }
)
# fmt: on
