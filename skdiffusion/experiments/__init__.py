"""The paper's experiments as functions with presets ("quick", "paper").

``python -m skdiffusion.experiments`` runs the README's main job.
"""
