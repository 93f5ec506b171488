"""One registry for everything a user can do: each command and each kind of pending prompt has
exactly one handler, declared next to its code.

A handler module keeps a `Router` and decorates its functions; `engine/handlers/__init__.py`
gathers the routers into the one `Registry` the turn consults. Adding a command or a prompt
kind is an entry in one module; the registry refuses a name or kind declared twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from kvisa.bot.engine.conversation import Conversation
from kvisa.bot.i18n import Text
from kvisa.bot.messages import UiOption
from kvisa.bot.session import Kind

CommandHandler = Callable[[Conversation, str], None]  # (conversation, arguments)
Prompter = Callable[[Conversation], str]
Offer = Callable[[Conversation, Text], list[UiOption]]
Chooser = Callable[[Conversation, str], None]  # (conversation, chosen option id)
TextReader = Callable[[Conversation, str], None]  # (conversation, typed text)
Check = Callable[[Conversation], bool]
# Looks at every message before anything else; True: it took the message (nothing else runs).
Gate = Callable[[Conversation], bool]
# Typed text that answers nothing pending (a question in the applicant's own words); True: it
# was dealt with (answered, offered choices, or sent to a person).
FreeText = Callable[[Conversation, str], bool]


def never(conversation: Conversation) -> bool:
    return False


@dataclass(frozen=True)
class Command:
    """`/name args`: runs at any moment, whatever prompt is pending."""

    name: str
    run: CommandHandler
    summary: str = ""  # msgid for /help and the platforms' command lists ("" = unlisted)
    needs_consent: bool = False  # before consent, the welcome is shown instead


@dataclass(frozen=True)
class Prompt:
    """A kind of pending prompt: how it is asked, what it offers, and what a reply does."""

    kind: Kind
    text: Prompter
    options: Offer
    choose: Chooser
    # Typed text that is none of the options (an answer, a date); None: options only.
    read: TextReader | None = None
    # Whether a number that is no option's is read as text (a date like 19980427) rather than
    # refused as a wrong choice.
    takes_digits: Check = never


@dataclass(frozen=True)
class Action:
    """Buttons valid whatever is pending, recognised by their option id's prefix (a
    reminder's "Done" pressed days later)."""

    prefix: str
    run: Chooser


class Router:
    """The commands, prompts and actions of one handler module."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.prompts: list[Prompt] = []
        self.actions: list[Action] = []
        self.gates: list[Gate] = []
        self.free_texts: list[FreeText] = []

    def gate(self, check: Gate) -> Gate:
        """Declare a gate: it sees every message first (a conversation handed to a person)."""
        self.gates.append(check)
        return check

    def free_text(self, read: FreeText) -> FreeText:
        """Declare what reads a question typed in the applicant's own words (one in all)."""
        self.free_texts.append(read)
        return read

    def command(
        self, name: str, *, summary: str = "", needs_consent: bool = False
    ) -> Callable[[CommandHandler], CommandHandler]:
        def register(run: CommandHandler) -> CommandHandler:
            self.commands.append(Command(name, run, summary, needs_consent))
            return run

        return register

    def prompt(
        self,
        kind: Kind,
        *,
        options: Offer,
        choose: Chooser,
        read: TextReader | None = None,
        takes_digits: Check = never,
    ) -> Callable[[Prompter], Prompter]:
        def register(text: Prompter) -> Prompter:
            self.prompts.append(Prompt(kind, text, options, choose, read, takes_digits))
            return text

        return register

    def action(self, prefix: str) -> Callable[[Chooser], Chooser]:
        def register(run: Chooser) -> Chooser:
            self.actions.append(Action(prefix, run))
            return run

        return register


class Registry:
    """Every router's entries, looked up by command name, prompt kind or option prefix."""

    def __init__(self, routers: Iterable[Router]) -> None:
        self.commands: dict[str, Command] = {}
        self.prompts: dict[Kind, Prompt] = {}
        self.actions: list[Action] = []
        self.gates: list[Gate] = []
        self.free_text: FreeText | None = None
        for router in routers:
            self.gates += router.gates
            for read in router.free_texts:
                if self.free_text is not None:
                    raise ValueError("free text is read by two handlers")
                self.free_text = read
            for command in router.commands:
                if command.name in self.commands:
                    raise ValueError(f"command /{command.name} is declared twice")
                self.commands[command.name] = command
            for prompt in router.prompts:
                if prompt.kind in self.prompts:
                    raise ValueError(f"prompt kind {prompt.kind} is declared twice")
                self.prompts[prompt.kind] = prompt
            self.actions += router.actions
        self._prefixes = tuple(a.prefix for a in self.actions)
        missing = set(Kind) - set(self.prompts)
        if missing:
            raise ValueError(f"no handler for prompt kinds {sorted(missing)}")

    def action_for(self, option_id: str) -> Action | None:
        if not option_id.startswith(self._prefixes):  # most texts: one C call
            return None
        return next((a for a in self.actions if option_id.startswith(a.prefix)), None)

    def listed(self) -> Sequence[tuple[str, str]]:
        """(name, summary msgid) of every listed command, in declaration order."""
        return [(c.name, c.summary) for c in self.commands.values() if c.summary]
