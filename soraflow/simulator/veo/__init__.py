"""Veo on Vertex AI, as the google-genai SDK (3.6) speaks it: the simulator's second dialect.

routes.py serves ``predictLongRunning``, ``fetchPredictOperation`` and the publisher model;
operation.py shapes the long-running operation; request.py checks a request as Vertex AI
does; envelope.py answers in Google's error envelope; gcs.py serves the objects Veo writes to
a ``storageUri``. The jobs are the simulator's own (one store for both dialects), so
``GET /_sim/jobs`` counts Veo operations beside Sora videos.
"""
