"""``dnn_collab_filtering_user_course_level``: user embeddings learned by predicting course levels.

A Keras network embeds the user and the course, concatenates the two embeddings, passes them
through a dense layer and predicts, with a softmax, the level (Beginner / Intermediate /
Advanced) of each course the user viewed.  Users are then compared by the cosine of their
learned embeddings.

A course's level is a property of the course, so the network could learn the task from the
course embedding alone and leave user embeddings at their random start.  Two choices keep the
user side meaningful: user embeddings start tiny (what they end up holding is what training
wrote into them: the level mix and the courses of the user's views), and the course embedding is
L2-regularised and passed through dropout, so the user embedding must carry the user's level
preference.  Training is seeded and deterministic (single-threaded op determinism), uses a
validation split with early stopping, and logs every epoch.

TensorFlow is imported inside :meth:`fit` only: the rest of the package (and the API) must not
pay its import time and memory.

**Sized for the data** (fit times: docs/benchmarks.md).  Keras's Adam updates the
*whole* user-embedding table and its two moment tables at every step, not only the batch's rows:
a step costs O(users × dim) whatever the batch, and at a fixed batch size the steps per epoch grow
with the rows too, so an epoch cost O(rows × users), quadratic in the platform's size.  Two changes, both keyed to one size rule so that the default data trains as before:

- :meth:`batch_size_for` keeps the batch at ``batch_size`` (1,024) up to ``max_steps_per_epoch``
  (256) × 1,024 training rows and above that grows it so that an epoch has at most 256 steps
  (the default 10,000-user data stays under it: unchanged).  The learning
  rate is left alone on purpose: a user with r rows appears in about r of an epoch's steps at any
  size, and Adam's per-coordinate normalisation makes its update independent of the batch's
  size, so each user's embedding gets the same number and kind of updates per epoch as at
  10,000 users; the shared layers get larger, less noisy batches.
- When the batch had to grow (``row_sparse_updates=None``, the default; ``True``/``False`` force
  it), the user embedding is trained row-sparse (:mod:`recommender.models.row_sparse`): Adam
  updates only the rows a batch touches and the lookup gathers only those rows, so a step costs
  O(batch) and an epoch O(rows), linear.  Below that size Keras's dense Adam and ``Embedding``
  stay, so the default data's embeddings are bit-identical to before.

On the planted truth (the share of the top-10 neighbours with the user's hidden skill level)
both changes keep or improve the neighbours at large sizes; the fit times and that share per
size are in ``benchmarks/results/dnn_fit.json`` (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any, Self

import numpy as np
import pandas as pd

from recommender.data.loader import Tables
from recommender.data.schema import LEVELS
from recommender.models.base import SimilarityModel
from recommender.reasons import Explanations, level_overlap
from recommender.search.neighbours import Neighbours

log = logging.getLogger(__name__)


class DnnUserCourseLevel(SimilarityModel):
    tuning_grid = [{}, {"embedding_dim": 16}, {"course_dropout": 0.7}, {"user_init_scale": 0.01}, {"patience": 4}]
    # skill, not topic: does the neighbours' level mix predict the level of the user's next courses?
    tuning_target = ("courses", "level_accuracy")

    def __init__(
        self,
        embedding_dim: int = 32,
        hidden_units: int = 32,
        epochs: int = 20,
        batch_size: int = 1024,
        max_steps_per_epoch: int = 256,
        row_sparse_updates: bool | None = None,
        learning_rate: float = 0.005,
        validation_split: float = 0.1,
        patience: int = 2,
        course_l2: float = 1e-4,
        course_dropout: float = 0.5,
        user_init_scale: float = 1e-3,
        seed: int = 7,
        progress: bool = False,
    ) -> None:
        self.embedding_dim, self.hidden_units, self.epochs = embedding_dim, hidden_units, epochs
        self.batch_size, self.max_steps_per_epoch = batch_size, max_steps_per_epoch
        self.row_sparse_updates, self.learning_rate = row_sparse_updates, learning_rate
        self.validation_split, self.patience = validation_split, patience
        self.course_l2, self.course_dropout, self.user_init_scale = course_l2, course_dropout, user_init_scale
        self.seed, self.progress = seed, progress

    def _training_pairs(self, tables: Tables) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Distinct (user, course) pairs with the course's level, shuffled by the seed."""
        views = tables.user_course_views[["user_handle", "course_id", "level"]].drop_duplicates(
            ["user_handle", "course_id"]
        )
        users, user_codes = np.unique(views["user_handle"].to_numpy(), return_inverse=True)
        course_codes, courses = pd.factorize(views["course_id"], sort=True)
        labels = pd.Categorical(views["level"], categories=list(LEVELS)).codes.astype(np.int32)
        order = np.random.default_rng(self.seed).permutation(len(views))
        return (
            users.astype(np.int64),
            np.asarray(courses),
            user_codes[order].astype(np.int32),
            course_codes[order].astype(np.int32),
            labels[order],
        )

    def batch_size_for(self, train_rows: int) -> int:
        """``batch_size``, or the smallest batch that covers ``train_rows`` in ``max_steps_per_epoch`` steps.

        Why it grows: see the module docstring (each dense Adam step costs O(users × dim), so the
        step count, not the batch, is what must stay bounded as the data grows).  With the
        row-sparse training that goes with it a step no longer costs O(users), but the larger
        batch still amortises the per-step overhead better.
        """
        return max(self.batch_size, math.ceil(train_rows / self.max_steps_per_epoch))

    def _build(self, n_users: int, n_courses: int, row_sparse: bool) -> Any:
        import keras

        from recommender.models.row_sparse import RowGatherEmbedding, RowSparseAdam

        user_in = keras.Input(shape=(1,), dtype="int32", name="user")
        course_in = keras.Input(shape=(1,), dtype="int32", name="course")
        user_vec = keras.layers.Flatten()(
            (RowGatherEmbedding if row_sparse else keras.layers.Embedding)(
                n_users,
                self.embedding_dim,
                embeddings_initializer=keras.initializers.RandomNormal(stddev=self.user_init_scale, seed=self.seed),
                name="user_embedding",
            )(user_in)
        )
        course_vec = keras.layers.Flatten()(
            keras.layers.Embedding(
                n_courses,
                self.embedding_dim,
                embeddings_regularizer=keras.regularizers.L2(self.course_l2),
                name="course_embedding",
            )(course_in)
        )
        course_vec = keras.layers.Dropout(self.course_dropout, seed=self.seed)(course_vec)
        hidden = keras.layers.Dense(self.hidden_units, activation="relu", name="hidden")(
            keras.layers.Concatenate()([user_vec, course_vec])
        )
        output = keras.layers.Dense(len(LEVELS), activation="softmax", name="level")(hidden)
        model = keras.Model([user_in, course_in], output)
        model.compile(
            optimizer=(RowSparseAdam if row_sparse else keras.optimizers.Adam)(self.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def fit(self, tables: Tables) -> Self:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hide C++ INFO..ERROR noise of tf.data
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(self.seed)
        tf.config.experimental.enable_op_determinism()
        users, courses, user_codes, course_codes, labels = self._training_pairs(tables)
        self.users_, self.courses_ = users, courses
        # distinct (user, course) pairs per level (bincount: np.add.at takes seconds at 25M rows)
        counts = np.bincount(user_codes.astype(np.int64) * len(LEVELS) + labels,
                             minlength=len(users) * len(LEVELS)).reshape(len(users), len(LEVELS)).astype(np.float64)
        self.level_mix_ = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
        if len(users) == 0:
            self.vectors_ = np.zeros((0, self.embedding_dim), dtype=np.float32)
            return self
        validation_split = self.validation_split if len(labels) >= 20 else 0.0
        self.training_pairs_ = len(labels)
        # Keras trains on the first (1 - split) of the rows: the batch is sized for those
        self.batch_size_ = self.batch_size_for(math.floor(len(labels) * (1.0 - validation_split)))
        log.info("dnn: %s users, %s courses, %s training pairs, batch size %s", f"{len(users):,}", f"{len(courses):,}",
                 f"{len(labels):,}", f"{self.batch_size_:,}")
        grown = self.batch_size_ > self.batch_size
        self.row_sparse_ = grown if self.row_sparse_updates is None else self.row_sparse_updates
        model = self._build(len(users), len(courses), self.row_sparse_)
        self.history_ = model.fit(
            [user_codes, course_codes],
            labels,
            batch_size=self.batch_size_,
            epochs=self.epochs,
            validation_split=validation_split,
            shuffle=True,
            verbose=0,
            callbacks=[
                keras.callbacks.EarlyStopping(
                    monitor="val_loss" if len(labels) >= 20 else "loss",
                    patience=self.patience,
                    restore_best_weights=True,
                ),
                _epoch_logger(self.epochs, self.progress),
            ],
        ).history
        self.vectors_ = np.asarray(model.get_layer("user_embedding").get_weights()[0], dtype=np.float32)
        return self

    def explain(self, neighbours: Neighbours) -> Explanations:
        """The course levels both users watch, with each one's share (overlap of their level mixes): what the
        embedding learned, told per neighbour."""
        return level_overlap(self.level_mix_, self.users_, neighbours, LEVELS)


def _epoch_logger(epochs: int, progress: bool) -> Any:
    """A Keras callback that logs each epoch; built here so the module imports without TensorFlow."""
    import keras
    from tqdm.auto import tqdm

    class EpochLogger(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            self.bar = tqdm(total=epochs, desc="dnn epochs", unit="epoch", disable=not progress, leave=False)
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            figures = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()) if isinstance(v, float))
            log.info("dnn epoch %d/%d %s (%.1fs)", epoch + 1, epochs, figures, time.perf_counter() - self.started)
            self.bar.update(1)

        def on_train_end(self, logs: dict | None = None) -> None:
            self.bar.close()

    return EpochLogger()
