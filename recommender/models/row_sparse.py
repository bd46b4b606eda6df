"""Row-sparse training of an embedding table: Adam and a lookup that touch only the batch's rows.

Keras 3's Adam densifies an embedding's gradient: every step reads and writes the whole table
and its two moment tables, O(rows of the table × dim) whatever the batch.  With one row per user
that is what made the DNN's fit grow with users × steps.  :class:`RowSparseAdam` (the "lazy" Adam of TF Addons) updates only the rows a
gradient arriving as ``tf.IndexedSlices`` touches, with Adam's formulas for those rows; rows not
in the batch keep their moments and values, where dense Adam would go on moving them with their
decaying momentum.  Dense gradients (every other layer) take Adam's own path.
:class:`RowGatherEmbedding` is the lookup that goes with it (see its docstring).

Imported only inside :meth:`DnnUserCourseLevel.fit`: it imports Keras and TensorFlow.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


class RowSparseAdam(keras.optimizers.Adam):
    """Adam; row-sparse updates for ``IndexedSlices`` gradients (see the module docstring for why)."""

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if not isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        # a user seen twice in the batch contributes one summed row, as the dense gradient would
        rows, positions = tf.unique(gradient.indices)
        grad = tf.cast(tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(rows)[0]), dtype)
        step = tf.cast(self.iterations + 1, dtype)
        lr = tf.cast(learning_rate, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        m_rows = tf.gather(m.value, rows)
        v_rows = tf.gather(v.value, rows)
        m_rows = m_rows + (grad - m_rows) * (1 - self.beta_1)
        v_rows = v_rows + (tf.square(grad) - v_rows) * (1 - self.beta_2)
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))
        self.assign_sub(variable, tf.IndexedSlices(m_rows * alpha / (tf.sqrt(v_rows) + self.epsilon), rows))
        return None


class RowGatherEmbedding(keras.layers.Embedding):
    """An embedding whose lookup gathers rows from the variable itself, never reading the whole table.

    Keras's ``Embedding`` reads the table into a tensor and gathers from that.  Once a variable
    has had sparse updates (the scatters of :class:`RowSparseAdam`), TensorFlow puts it in
    copy-on-read mode and every such read copies the whole table: O(users × dim) a step again,
    whatever the batch.  ``tf.gather`` on the
    variable reads only the batch's rows; its gradient is the same ``IndexedSlices``.
    """

    def call(self, inputs: Any) -> Any:
        if inputs.dtype not in (tf.int32, tf.int64):
            inputs = tf.cast(inputs, tf.int32)
        return tf.cast(tf.gather(self.embeddings.value, inputs), self.compute_dtype)
