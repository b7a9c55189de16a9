"""Train and export the staff model (``kimiwonosete.score.learned.staves``) in one command.

    python -m training.train_staves ../shared/train --out training-runs/staves [--seed S] [--export]

The same renderings as the note model's (``training.train.build_set``, the same seeds), read
through the staff model's inputs, train the narrower stack on the staff targets alone; the
held-out pieces (``training.train.held_out``) report the loss and staff accuracy after every
epoch (``curves.tsv``, by ``training.train.fit``).
"""

from __future__ import annotations

import sys
from functools import partial

from kimiwonosete.score.learned import staves
from training.model import ScoreNet
from training.train import build_set, command_line, evaluate, losses, train_command


def main(argv: list[str] | None = None) -> int:
    # At most 400 pieces of a part: the Lieder's first 400 (of 1,425) beside all of Mutopia (303)
    # and piano-midi.de (146), so that songs' accompaniments do not outweigh solo piano music.
    # Every 3rd ASAP performance, staff (within a hand's reach): all the Lieder 0.922 (0.926; 8
    # epochs), none 0.929 (0.932), 400 0.931 (0.933).
    ap = command_line(__doc__, staves.WEIGHTS, epochs=6, channels=64, length=512, batch=16, limit=400,
                      length_help="notes per training crop (the receptive field: 509)",
                      limit_help="pieces per part, at most")
    args = ap.parse_args(argv)
    loss_fn = partial(losses, heads=staves.HEADS)
    return train_command(args, "staves", partial(build_set, features=staves.staff_features), 1,
                         lambda: ScoreNet(args.channels, staves.DILATIONS, staves.N_FEATURES, staves.HEADS), loss_fn,
                         partial(evaluate, loss_fn=loss_fn, heads=staves.HEADS), "notes")


if __name__ == "__main__":
    sys.exit(main())
