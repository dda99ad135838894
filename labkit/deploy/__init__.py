"""Deployment: .tflite -> graph IR -> labkit-nn C -> Arduino sketch."""
