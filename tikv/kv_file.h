/* kv_file.h — small durable-file helpers for the storage engine.
 *
 * Contract:
 * - kv_file_join(): "dir/name" into buf; -1 with err when it does not fit.
 * - kv_file_fsync_dir(): fsync a directory, so a create/rename/truncate in it is durable.
 * - kv_file_write_atomic(): replace path with data: write path.tmp, fsync it, rename it over
 *   path, fsync the dir. After a crash path holds the old or the new content, never a mix.
 * - kv_file_exists(): 1 if path exists, 0 if not, -1 with err on another stat error.
 * - kv_file_write_all(): write(2) until all of data is written (EINTR retried); 0, or -1 with
 *   errno set.
 * Functions returning int: 0 on success, -1 with one line in err (naming the path) otherwise.
 */
#ifndef TISIM_KV_FILE_H
#define TISIM_KV_FILE_H

#include <stddef.h>

int kv_file_join(char *buf, size_t len, const char *dir, const char *name, char *err,
                 size_t errlen);
int kv_file_fsync_dir(const char *dir, char *err, size_t errlen);
int kv_file_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                         char *err, size_t errlen);
int kv_file_exists(const char *path, char *err, size_t errlen);
int kv_file_write_all(int fd, const void *data, size_t len);

#endif
