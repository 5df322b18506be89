"""Full-resolution compositing: mask post-processing into an alpha matte, and backgrounds that use it."""
