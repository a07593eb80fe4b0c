/* Comparison of two L2-normalised embeddings: the inner loop of every match. */
#ifndef MATCH_SIMILARITY_H
#define MATCH_SIMILARITY_H

/* Cosine similarity of two unit vectors (their dot product), in [-1, 1]. */
float embedding_similarity(const float *a, const float *b, int dim);

#endif
