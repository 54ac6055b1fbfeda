"""Text classification: packed sequences, padding, the text data path and learning on real e-mails."""

from __future__ import annotations

import lightning as L
import pytest
import torch

import archlab
from archlab.data.text_batches import TokenBatchLoader, TokenSplit
from archlab.models import create_model


def text_model(**kwargs):
    torch.manual_seed(0)
    return create_model("lstm", vocab_size=50, embedding_dim=8, hidden=12, num_classes=2, **kwargs).eval()


def ragged_batch():
    lengths = torch.tensor([5, 2, 7])
    ids = torch.zeros(3, 7, dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(2, 50, (int(length),), generator=torch.Generator().manual_seed(row))
    return ids, lengths


@pytest.mark.parametrize("options", [{}, {"bidirectional": True}, {"readout": "attention"}, {"layers": 2},
                                     {"cell": "gru", "bidirectional": True, "layers": 2}])
def test_packed_batch_equals_each_text_alone_and_padding_changes_nothing(options):
    model = text_model(**options)
    ids, lengths = ragged_batch()
    with torch.no_grad():
        batched = model(ids, lengths)
        alone = torch.cat([model(ids[r : r + 1, : int(n)], lengths[r : r + 1]) for r, n in enumerate(lengths)])
        more_padding = model(torch.cat([ids, torch.zeros(3, 9, dtype=torch.long)], 1), lengths)
        garbage_in_padding = ids.clone()
        for row, n in enumerate(lengths):
            garbage_in_padding[row, int(n):] = 7
        garbage = model(garbage_in_padding, lengths)
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batched, more_padding, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batched, garbage, rtol=1e-5, atol=1e-6)


def test_without_lengths_the_padding_is_read():
    """The control: the same model reading the padded rows without packing gives other outputs."""
    model = text_model()
    ids, lengths = ragged_batch()
    with torch.no_grad():
        assert not torch.allclose(model(ids, lengths), model(ids), atol=1e-4)


def test_bidirectional_output_sizes():
    ids, lengths = ragged_batch()
    for bidirectional, width in ((False, 12), (True, 24)):
        model = text_model(bidirectional=bidirectional, layers=2)
        with torch.no_grad():
            outputs = model.sequence_outputs(ids, lengths)
        assert outputs.shape == (3, 7, width)
        assert model.classifier.in_features == width
        assert (outputs[1, 2:] == 0).all()  # steps past a text's length are padding: zeros


def test_attention_gives_padding_no_weight():
    model = text_model(readout="attention")
    ids, lengths = ragged_batch()
    with torch.no_grad():
        outputs = model.sequence_outputs(ids, lengths)
        mask = torch.arange(7) < lengths[:, None]
        weights = model.attention.weights(outputs, mask)
    assert (weights[~mask] == 0).all()
    torch.testing.assert_close(weights.sum(1), torch.ones(3))


def test_token_batches_are_cut_to_their_longest_text():
    split = TokenSplit(torch.arange(40).reshape(4, 10), torch.tensor([3, 10, 2, 4]), torch.tensor([0, 1, 0, 1]))
    loader = TokenBatchLoader(split, 2, shuffle=False)
    (ids_a, lengths_a), labels_a = next(iter(loader))
    assert ids_a.shape == (2, 10) and lengths_a.tolist() == [3, 10]
    batches = list(TokenBatchLoader(split, 2, shuffle=False))
    (ids_b, lengths_b), labels_b = batches[1]
    assert ids_b.shape == (2, 4) and labels_b.tolist() == [0, 1]


class _GradNorm(L.Callback):
    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))


def test_gradient_clipping_bounds_the_norm(tiny_blobs, tmp_path):
    """Recurrent models clip at norm 1 by default; a huge learning signal shows it (and 0 turns it off)."""
    clipped, free = _GradNorm(), _GradNorm()
    settings = {**tiny_blobs, "max_steps": 6, "report": False, "l2_penalty": 100.0}
    archlab.train("gru", run_dir=tmp_path / "a", callbacks=[clipped], **settings)
    archlab.train("gru", run_dir=tmp_path / "b", callbacks=[free], grad_clip=0, **settings)
    assert max(clipped.norms) <= 1.0 + 1e-4
    assert max(free.norms) > 2.0  # the same run without clipping has larger gradients


@pytest.mark.slow
def test_gru_learns_spam_from_the_words_of_real_emails(tmp_path):
    """Bar: test accuracy ≥ 0.85 and spam F1 ≥ 0.7 after three epochs (majority class: 0.686). Budget ≈ 40 s."""
    run = archlab.train("gru", data="spam", epochs=3, batch_size=64, eval_batch_size=256,
                        optimizer={"name": "adam", "lr": 3e-3}, model_args={"hidden": 32, "embedding_dim": 32},
                        task_args={"max_length": 120}, run_dir=tmp_path / "spam", progress=False, report=False)
    test = run.summary["test_metrics"]
    assert test["accuracy"] >= 0.85, test
    assert run.summary["per_class"]["spam"]["f1"] >= 0.7, run.summary["per_class"]
    meta = archlab.load_run(run.path).load_model().meta
    assert meta["tokenizer"]["kind"] == "word" and meta["classes"] == ["ham", "spam"]


def test_the_vocabulary_comes_from_training_text_only():
    from archlab.data.text_batches import load_text_data
    from archlab.data.text import split_words

    data = load_text_data("spam", max_length=50, min_count=1)
    vocabulary = set(data.tokenizer.words)
    test_words = {w for text in data.test_texts for w in split_words(text)}
    assert test_words - vocabulary, "some test words must be unknown to a vocabulary fitted on training text"
    # stratified: the spam share is the same in every split to within one message
    shares = [float(split.labels.float().mean()) for split in (data.train, data.val, data.test)]
    assert max(shares) - min(shares) < 0.01
    assert len(data.train) + len(data.val) + len(data.test) == 6046


def test_text_run_maps_hidden_states_and_padding_does_not_move_a_masked_model(tmp_path):
    import numpy as np

    run = archlab.train("gru", data="spam", max_steps=5, batch_size=32, eval_batch_size=256,
                        model_args={"hidden": 16, "embedding_dim": 16}, task_args={"max_length": 40},
                        run_dir=tmp_path / "run", progress=False, log_every_n_steps=1)
    with np.load(run.path / "hidden_states.npz") as arrays:
        kinds = list(arrays["padding_kinds"])
        distance = dict(zip(kinds, arrays["padding_distance"]))
        assert distance["<pad>"] == 0.0  # packed: appended padding is never read
        assert distance["random words"] > 0.0  # the control: real words do move the output
        lengths, projections = arrays["lengths"], arrays["projections"]
        assert np.isnan(projections[lengths < projections.shape[1], -1]).all()  # past a text's end: no state
        assert arrays["tsne"].shape == (len(lengths), 2)
        assert set(arrays["labels"]) == {0, 1}  # both classes among the mapped texts
    html = (run.path / "report.html").read_text()
    assert "t-SNE of their final states" in html and "each text its own length" in html


def test_eval_and_predict_refuse_a_text_run_with_the_reason(tmp_path):
    from archlab.errors import ArchlabError
    from archlab.inference import evaluate, predict

    run = archlab.train("bow", data="spam", max_steps=2, task_args={"max_length": 20}, run_dir=tmp_path / "run",
                        progress=False, report=False)
    with pytest.raises(ArchlabError, match="classify run on text data; `eval` takes image classifiers"):
        evaluate(run.path)
    with pytest.raises(ArchlabError, match="`predict` takes image classifiers"):
        predict(run.path, [tmp_path / "x.png"])


def test_init_from_a_run_with_another_vocabulary_is_refused(tmp_path):
    from archlab.errors import RunError

    settings = {"max_steps": 1, "progress": False, "report": False, "model_args": {"embedding_dim": 8}}
    first = archlab.train("bow", data="spam", task_args={"max_length": 20}, run_dir=tmp_path / "a", **settings)
    with pytest.raises(RunError, match="its vocabulary differs from this run's"):
        archlab.train("bow", data="spam", task_args={"max_length": 20, "vocab_size": 10000}, run_dir=tmp_path / "b",
                      init_from=str(first.path), **settings)
    again = archlab.train("bow", data="spam", task_args={"max_length": 30}, run_dir=tmp_path / "c",
                          init_from=str(first.path), **settings)  # max_length does not change the vocabulary
    assert again.summary["init_from"]["loaded"] == 3
