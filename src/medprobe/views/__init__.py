"""Views of scored runs. `html` writes the trust report (index.html with plots, verdicts and a sample
browser; `medprobe report`), `plots` draws its figures (SVG and PNG), `browser` writes the sample data,
`thumbs` the image thumbnails. Nothing here is imported by `import medprobe`."""
