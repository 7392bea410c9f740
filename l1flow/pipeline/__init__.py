"""The pipeline's stages as plain functions over a workspace and a run folder.

flows/pipeline.py only orchestrates these; `l1flow compare` and the tests call
them directly.
"""
