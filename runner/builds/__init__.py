"""Image builds: the shared runtime image, dependency images, and git-mode builds."""
