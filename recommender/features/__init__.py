"""Turning tables into sparse user × item matrices that the models consume."""

from recommender.features.matrices import UserItemMatrix, user_item_matrix

__all__ = ["UserItemMatrix", "user_item_matrix"]
