"""LivGUI: liver and liver-lesion CT review, segmentation and correction.

Research use only, not for diagnosis.
"""

__version__ = "0.1.0"
RESEARCH_NOTICE = "Research use only, not for diagnosis."
