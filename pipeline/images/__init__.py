"""Image acquisition: the request guard, img2dataset downloads, the content-addressed image table."""
