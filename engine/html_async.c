/* html_async.c: html.parse's trees made on a thread of their own. A page's tree takes
 * libxml2 most of what a crawl with selectors spends on the page; on this thread it is
 * built while the task that asked waits and the loop goes on with the other pages (their
 * responses, their links), on another core. The tree is freed on that thread too, so that
 * its blocks go back to the lists they came from (html_mem.c) and the freeing is not the
 * loop's either. One thread: libxml2's per-thread state makes a tree built on a thread
 * slower than on the loop's, and two cores are what this is measured on (a pool of four,
 * libuv's, made the crawl slower than no thread at all).
 *
 * Jobs carry their own copy of the page, so that nothing on the loop's side (a Lua string,
 * the Lua state itself) has to outlive them. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "sluice.h"
#include "html.h"
#include "html_doc.h"

enum { JOB_PARSE, JOB_FREE };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t more = PTHREAD_COND_INITIALIZER;
static sl_html_job *todo, *todo_tail;    /* for the thread, in order */
static sl_html_job *done_list;           /* parsed, for the loop */
static int stopping;                     /* the process ends: the thread finishes up */
static int started;                      /* 1 running, -1 could not start */
static pthread_t thread;

/* On the loop: the thread's doorbell (made at the first parse), referenced while parses
 * are out so that the loop waits for them. */
static uv_async_t bell;
static uv_loop_t *bell_loop;
static int bell_open;                    /* under mu: the thread may ring it */
static size_t out;                       /* parses queued and not yet back (loop only) */

static void *html_thread(void *arg) {
  (void)arg;
  sl_html_mem_thread(0);
  pthread_mutex_lock(&mu);
  for (;;) {
    sl_html_job *j;
    while (todo == NULL && !stopping)
      pthread_cond_wait(&more, &mu);
    if (todo == NULL)
      break;
    j = todo;
    if ((todo = j->next) == NULL)
      todo_tail = NULL;
    pthread_mutex_unlock(&mu);
    if (j->kind == JOB_FREE) {
      xmlFreeDoc(j->doc);
      free(j);
      pthread_mutex_lock(&mu);
      continue;
    }
    j->doc = sl_html_doc_parse(j->body, j->n, j->has_label ? j->body + j->n : NULL,
                               j->label_len);
    pthread_mutex_lock(&mu);
    j->next = done_list;
    done_list = j;
    if (bell_open)
      uv_async_send(&bell);
  }
  pthread_mutex_unlock(&mu);
  sl_html_doc_thread_end();
  sl_html_mem_thread(1);
  return NULL;
}

/* At exit: the thread frees what it still holds and ends; parses that came back after the
 * loop was gone are freed here. */
static void html_thread_stop(void) {
  sl_html_job *j;
  pthread_mutex_lock(&mu);
  stopping = 1;
  pthread_cond_signal(&more);
  pthread_mutex_unlock(&mu);
  pthread_join(thread, NULL);
  started = -1;                /* from here on, trees are made and freed on this thread */
  while ((j = done_list) != NULL) {
    done_list = j->next;
    if (j->doc != NULL)
      xmlFreeDoc(j->doc);
    free(j);
  }
}

/* On the loop: hands the parsed pages back to their tasks. */
static void bell_cb(uv_async_t *h) {
  sl_html_job *j, *next;
  (void)h;
  pthread_mutex_lock(&mu);
  j = done_list;
  done_list = NULL;
  pthread_mutex_unlock(&mu);
  for (; j != NULL; j = next) {
    next = j->next;
    j->done = 1;
    if (--out == 0)
      uv_unref((uv_handle_t *)&bell);
    sl_task_wake(j->waiter, SL_WAKE_OK);
  }
}

/* The engine is being freed (its handles are closed next): no more rings. */
static void bell_detach(void) {
  pthread_mutex_lock(&mu);
  bell_open = 0;
  pthread_mutex_unlock(&mu);
}

/* Starts the thread and the bell on loop; 0, or -1 when either cannot be had. */
static int html_thread_start(uv_loop_t *loop) {
  if (started != 0)
    return started > 0 && loop == bell_loop ? 0 : -1;
  started = -1;
  if (uv_async_init(loop, &bell, bell_cb) != 0)
    return -1;
  uv_unref((uv_handle_t *)&bell);
  if (pthread_create(&thread, NULL, html_thread, NULL) != 0) {
    uv_close((uv_handle_t *)&bell, NULL);
    return -1;
  }
  bell_loop = loop;
  bell_open = 1;
  started = 1;
  sl_engine_at_free(bell_detach);
  atexit(html_thread_stop);
  return 0;
}

static void job_push(sl_html_job *j) {
  j->next = NULL;
  pthread_mutex_lock(&mu);
  if (todo_tail != NULL)
    todo_tail->next = j;
  else
    todo = j;
  todo_tail = j;
  pthread_cond_signal(&more);
  pthread_mutex_unlock(&mu);
}

sl_html_job *sl_html_job_new(const char *body, size_t n, const char *label,
                             size_t label_len) {
  sl_html_job *j;
  if (label == NULL)
    label_len = 0;
  if (n > (size_t)-1 - sizeof *j - label_len - 1 ||
      (j = (sl_html_job *)malloc(sizeof *j + n + label_len + 1)) == NULL)
    return NULL;
  memset(j, 0, sizeof *j);
  j->kind = JOB_PARSE;
  j->body = (char *)(j + 1);
  memcpy(j->body, body, n);
  if (label != NULL)
    memcpy(j->body + n, label, label_len);
  j->body[n + label_len] = '\0';
  j->n = n;
  j->label_len = label_len;
  j->has_label = label != NULL;
  return j;
}

int sl_html_async_parse(uv_loop_t *loop, sl_html_job *j) {
  if (html_thread_start(loop) != 0)
    return -1;
  if (out++ == 0)
    uv_ref((uv_handle_t *)&bell);
  job_push(j);
  return 0;
}

void sl_html_async_free(xmlDocPtr doc) {
  sl_html_job *j;
  if (started <= 0 || (j = (sl_html_job *)calloc(1, sizeof *j)) == NULL) {
    xmlFreeDoc(doc);
    return;
  }
  j->kind = JOB_FREE;
  j->doc = doc;
  job_push(j);
}
