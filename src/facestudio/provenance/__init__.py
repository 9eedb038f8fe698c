"""Provenance of generated images: the label and settings in the file, content credentials
(C2PA) signed on save, and an invisible watermark in the pixels where the image is large
enough. `save_image` writes all three; `inspect_image` reads them back."""
