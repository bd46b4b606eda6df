"""RowSparseAdam: Adam's update on the rows a sparse gradient touches, nothing on the others; RowGatherEmbedding."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from recommender.models.row_sparse import RowGatherEmbedding, RowSparseAdam  # noqa: E402

pytestmark = pytest.mark.slow

START = np.arange(12, dtype=np.float32).reshape(6, 2) / 10


def _step(optimizer: keras.optimizers.Optimizer, variable: keras.Variable, gradient) -> np.ndarray:
    optimizer.apply([gradient], [variable])
    return np.asarray(variable.numpy())


def _sparse(indices: list[int], values: list[list[float]]) -> tf.IndexedSlices:
    shape = tf.constant([6, 2], tf.int64)
    return tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(indices, tf.int64), shape)


def test_first_step_equals_dense_adam_with_duplicate_rows_summed():
    sparse_var, dense_var = keras.Variable(START.copy()), keras.Variable(START.copy())
    sparse_opt, dense_opt = RowSparseAdam(0.1), keras.optimizers.Adam(0.1)
    grad = _sparse([4, 1, 4], [[1.0, -2.0], [0.5, 0.5], [3.0, 1.0]])
    got = _step(sparse_opt, sparse_var, grad)
    want = _step(dense_opt, dense_var, tf.convert_to_tensor(grad))  # rows 4 summed: [4, -1]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)
    assert not np.allclose(got[[1, 4]], START[[1, 4]])
    np.testing.assert_array_equal(got[[0, 2, 3, 5]], START[[0, 2, 3, 5]])


def test_rows_outside_the_batch_keep_their_value_where_dense_adam_moves_them():
    sparse_var, dense_var = keras.Variable(START.copy()), keras.Variable(START.copy())
    sparse_opt, dense_opt = RowSparseAdam(0.1), keras.optimizers.Adam(0.1)
    first, second = _sparse([2], [[1.0, 1.0]]), _sparse([5], [[-1.0, 2.0]])
    _step(sparse_opt, sparse_var, first)
    _step(dense_opt, dense_var, tf.convert_to_tensor(first))
    after_first = np.asarray(sparse_var.numpy()).copy()
    got = _step(sparse_opt, sparse_var, second)
    want = _step(dense_opt, dense_var, tf.convert_to_tensor(second))
    np.testing.assert_array_equal(got[2], after_first[2])  # untouched by the second batch
    assert not np.allclose(want[2], after_first[2])  # dense Adam's momentum moved it on
    # the touched row follows Adam's formulas at step 2 from zero moments
    m = 0.1 * np.array([-1.0, 2.0])
    v = 0.001 * np.array([1.0, 4.0])
    alpha = 0.1 * np.sqrt(1 - 0.999**2) / (1 - 0.9**2)
    np.testing.assert_allclose(got[5], START[5] - alpha * m / (np.sqrt(v) + 1e-7), rtol=1e-5)


def test_dense_gradients_take_adams_own_path():
    a, b = keras.Variable(START.copy()), keras.Variable(START.copy())
    grad = tf.constant(np.ones((6, 2), np.float32))
    np.testing.assert_array_equal(_step(RowSparseAdam(0.1), a, grad), _step(keras.optimizers.Adam(0.1), b, grad))


def test_row_gather_embedding_looks_up_like_keras_and_yields_a_row_sparse_gradient():
    ids = tf.constant([[3], [0], [3]], tf.int32)
    ours = RowGatherEmbedding(6, 2, embeddings_initializer=keras.initializers.Constant(START))
    theirs = keras.layers.Embedding(6, 2, embeddings_initializer=keras.initializers.Constant(START))
    np.testing.assert_array_equal(np.asarray(ours(ids)), np.asarray(theirs(ids)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(ours(ids))
    gradient = tape.gradient(loss, ours.embeddings.value)
    assert isinstance(gradient, tf.IndexedSlices)
    np.testing.assert_array_equal(np.sort(gradient.indices.numpy()), [0, 3, 3])
