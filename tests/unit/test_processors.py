"""Each logits processor against hand-computed numbers."""

import pytest
import torch

from repcheck.processors import DRYProcessor, PresenceFrequencyPenaltyProcessor, WindowedRepetitionPenaltyProcessor


def test_presence_frequency_counts_generated_tokens_only():
    # prompt = [1, 2] (2 tokens); generated = [3, 3, 1]
    ids = torch.tensor([[1, 2, 3, 3, 1]])
    scores = torch.zeros(1, 5)
    out = PresenceFrequencyPenaltyProcessor(presence_penalty=0.5, frequency_penalty=0.25, prompt_length=2)(ids, scores)
    # token 3: count 2 -> 0.25*2 + 0.5 = 1.0 ; token 1: count 1 -> 0.25 + 0.5 = 0.75 ; token 2 only in prompt -> 0
    assert out[0].tolist() == pytest.approx([0.0, -0.75, 0.0, -1.0, 0.0])


def test_presence_frequency_window_and_empty_generation():
    ids = torch.tensor([[1, 3, 3, 4]])
    out = PresenceFrequencyPenaltyProcessor(0.0, 1.0, prompt_length=1, last_n=2)(ids, torch.zeros(1, 5))
    assert out[0].tolist() == pytest.approx([0, 0, 0, -1.0, -1.0])  # window [3, 4]
    same = PresenceFrequencyPenaltyProcessor(1.0, 1.0, prompt_length=4)(ids, torch.ones(1, 5))
    assert same[0].tolist() == [1.0] * 5


def test_windowed_repetition_penalty():
    ids = torch.tensor([[0, 1, 2]])
    scores = torch.tensor([[2.0, -2.0, 4.0, 1.0]])
    out = WindowedRepetitionPenaltyProcessor(2.0, last_n=2)(ids, scores)
    # window = tokens 1, 2: negative logit multiplied, positive divided; token 0 is outside the window
    assert out[0].tolist() == pytest.approx([2.0, -4.0, 2.0, 1.0])


def test_dry_penalty_by_hand():
    # Sequence: A B C D A B C  (A=1 B=2 C=3 D=4). The suffix "A B C" occurred before, followed by D:
    # candidate D would extend a repeated suffix of length 3.
    ids = [1, 2, 3, 4, 1, 2, 3]
    dry = DRYProcessor(multiplier=0.8, base=1.75, allowed_length=2, breaker_ids=[])
    assert dry.match_lengths(ids) == {4: 3}
    out = dry(torch.tensor([ids]), torch.zeros(1, 6))
    assert out[0, 4].item() == pytest.approx(-0.8 * 1.75 ** (3 - 2))
    assert out[0, [0, 1, 2, 3, 5]].tolist() == [0.0] * 5


def test_dry_allowed_length_and_breakers():
    ids = [1, 2, 4, 1, 2]  # suffix "1 2" repeated (length 2), candidate 4
    assert DRYProcessor(1.0, 2.0, 3, [])(torch.tensor([ids]), torch.zeros(1, 5))[0, 4] == 0  # 2 < allowed 3
    assert DRYProcessor(1.0, 2.0, 2, [])(torch.tensor([ids]), torch.zeros(1, 5))[0, 4] == pytest.approx(-1.0)
    # a breaker inside the earlier occurrence stops the match: 9 breaks "9 2" so only length 1 remains
    broken = [9, 2, 4, 1, 2]
    assert DRYProcessor(1.0, 2.0, 1, [9]).match_lengths(broken) == {4: 1}
    # the last token being a breaker disables DRY for this step
    assert DRYProcessor(1.0, 2.0, 1, [2]).match_lengths(ids) == {}


def test_dry_window():
    ids = [1, 2, 3, 9, 9, 9, 1, 2]
    assert DRYProcessor(1.0, 2.0, 2, []).match_lengths(ids) == {3: 2}
    assert DRYProcessor(1.0, 2.0, 2, [], penalty_last_n=4).match_lengths(ids[-4:]) == {}


def test_breaker_ids_decode_the_vocabulary_once_per_tokenizer():
    from repcheck.processors import breaker_token_ids

    class Tok:
        calls = 0

        def __len__(self):
            return 4

        def batch_decode(self, ids):
            Tok.calls += 1
            return ["a", "b\n", ":c", "d"]

    tok = Tok()
    assert breaker_token_ids(tok, ["\n", ":"]) == {1, 2}
    assert breaker_token_ids(tok, ["d"]) == {3}
    assert Tok.calls == 1


def _naive_match_lengths(ids, breakers):
    """The definition, by brute force: extend each earlier occurrence of the last token backwards."""
    n, out = len(ids), {}
    if n < 2 or ids[-1] in breakers:
        return out
    for i in range(n - 1):
        if ids[i] != ids[-1] or ids[i + 1] in breakers:
            continue
        length = 1
        while i - length >= 0 and ids[i - length] not in breakers and ids[i - length] == ids[n - 1 - length]:
            length += 1
        out[ids[i + 1]] = max(out.get(ids[i + 1], 0), length)
    return out


@pytest.mark.parametrize("seed", range(30))
def test_dry_match_lengths_equal_the_definition(seed):
    import random

    rng = random.Random(seed)
    period = [rng.randrange(6) for _ in range(rng.randint(1, 7))]
    ids = [rng.randrange(6) for _ in range(rng.randint(0, 20))] + period * rng.randint(1, 8)
    ids += [rng.randrange(6) for _ in range(rng.randint(0, 3))]
    breakers = set(rng.sample(range(6), rng.randint(0, 2)))
    assert DRYProcessor(1.0, 1.75, 2, breakers).match_lengths(ids) == _naive_match_lengths(ids, breakers)


def test_dry_matches_longer_than_512_tokens_are_not_capped():
    """llama.cpp caps no match length; a 600-token repeat is a 600-token match (it was 512)."""
    block = list(range(10, 610))
    ids = [1] + block + [5] + block
    assert DRYProcessor(1.0, 1.75, 2, []).match_lengths(ids) == {5: 600}
