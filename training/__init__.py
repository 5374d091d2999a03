"""Churn training pipeline: data, features, training, registration, scoring, drift."""
