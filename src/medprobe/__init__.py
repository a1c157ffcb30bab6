"""medprobe: can this medical vision-language model be trusted, and how do we know?"""

__version__ = "0.1.0"
