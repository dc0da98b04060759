"""Similar embeddings found from the vectors themselves (issue 10): a fixed-size summary per
version and encoder stored at publish time, and exact cosine search over a compact matrix."""
