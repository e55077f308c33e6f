"""Memorable unique run ids: ``adjective-animal-NNNN`` (e.g. ``amber-heron-0417``).

About 100 * 100 * 10,000 = 10^8 combinations from the system's CSPRNG: collisions among the runs
of one team are unlikely, and the id still reads well in queue names, Kubernetes objects and logs.
A run id is a valid SQS queue name part and a Kubernetes DNS-1123 label.
"""

from __future__ import annotations

import re
import secrets

__all__ = ["check_run_id", "generate_run_id"]

_ADJECTIVES = (
    "agile amber ancient aqua arctic azure bold brave breezy bright brisk calm candid cheerful "
    "clever cobalt cosmic coral crimson crisp curious dapper daring dashing deft eager early "
    "earnest electric elegant emerald epic fair fancy fearless fierce fluffy frosty gentle giant "
    "gilded glad golden graceful grand happy hardy hazel hidden humble icy indigo jade jolly "
    "keen kind lively lucky lunar magic mellow merry mighty misty modest noble nimble olive "
    "opal patient plucky polar proud quick quiet radiant rapid rosy royal rustic sandy scarlet "
    "serene sharp shiny silent silver sleek smooth snowy solar spry steady stellar sturdy sunny "
    "swift tidy topaz tranquil vivid warm wild witty zesty"
).split()

_ANIMALS = (
    "albatross alpaca antelope badger beaver bison bobcat buffalo camel caribou cheetah "
    "chinchilla cobra condor cougar coyote crane cricket dingo dolphin donkey dove eagle eel "
    "egret elk falcon ferret finch flamingo fox gazelle gecko gibbon giraffe goose gopher "
    "gorilla grouse hamster hare hawk hedgehog heron hippo ibex ibis iguana impala jackal jaguar "
    "kestrel kiwi koala lemur leopard lion llama lobster lynx magpie manatee marmot marten "
    "meerkat mink mole moose narwhal newt ocelot octopus okapi orca osprey otter owl panda "
    "panther parrot pelican penguin puffin quail rabbit raven salmon seal shark sparrow squid "
    "swan tapir tiger toucan turtle walrus weasel whale wolf wombat yak zebra"
).split()

_RUN_ID = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")


def generate_run_id() -> str:
    """A fresh memorable id, ``adjective-animal-NNNN``."""
    return (
        f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_ANIMALS)}-{secrets.randbelow(10_000):04d}"
    )


def check_run_id(run_id: str) -> str:
    """``run_id`` if it can name queues and Kubernetes objects, else a ``ValueError``."""
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id) or "--" in run_id:
        raise ValueError(
            "`run_id` must be 2-40 characters of lowercase letters, digits and single '-', "
            f"starting with a letter and not ending with '-', got {run_id!r}"
        )
    return run_id
