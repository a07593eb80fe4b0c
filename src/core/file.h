/* Whole-file reads for configuration material, models and benchmark inputs. */
#ifndef CORE_FILE_H
#define CORE_FILE_H
#include <stddef.h>
#include <stdint.h>

/* Reads path into a malloc'd buffer with a NUL after the last byte (so text
 * parsers can use it as a string). NULL when the file cannot be read or is larger
 * than max_bytes. */
uint8_t *file_read_all(const char *path, size_t max_bytes, size_t *len);

#endif
