/* http_cookie_date.c: the dates of cookies' Expires attributes, read by the algorithm of
 * RFC 6265 5.1.1 (tokens in any order, the first of each kind wins), which accepts every
 * format servers send (RFC 1123, RFC 850, asctime, and their variants). */
#include <strings.h>

#include "http_cookie.h"
#include "sluice.h"

static int is_delim(unsigned char ch) {  /* RFC 6265 5.1.1 delimiter */
  return ch == 0x09 || (ch >= 0x20 && ch <= 0x2f) || (ch >= 0x3b && ch <= 0x40) ||
         (ch >= 0x5b && ch <= 0x60) || (ch >= 0x7b && ch <= 0x7e);
}

static int is_digit(unsigned char ch) {
  return ch >= '0' && ch <= '9';
}

/* Reads 1 to max digits at s[*i] (at least min); returns the number or -1. */
static int digits(const char *s, size_t n, size_t *i, int min, int max) {
  int v = 0, k = 0;
  while (*i < n && k < max && is_digit((unsigned char)s[*i])) {
    v = v * 10 + (s[*i] - '0');
    (*i)++;
    k++;
  }
  if (k < min || (*i < n && is_digit((unsigned char)s[*i])))
    return -1;
  return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  int64_t era, yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int sl_cookie_parse_date(const char *s, size_t n, int64_t *t) {
  static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int found_time = 0, found_day = 0, found_month = 0, found_year = 0;
  int hh = 0, mm = 0, ss = 0, day = 0, month = 0, year = 0;
  size_t i = 0;
  while (i < n) {
    size_t start, end, k;
    while (i < n && is_delim((unsigned char)s[i]))
      i++;
    start = i;
    while (i < n && !is_delim((unsigned char)s[i]))
      i++;
    end = i;
    if (start == end)
      continue;
    if (!found_time) {         /* hms-time: 1*2DIGIT ":" 1*2DIGIT ":" 1*2DIGIT */
      int h, m, sec;
      k = start;
      if ((h = digits(s, end, &k, 1, 2)) >= 0 && k < end && s[k++] == ':' &&
          (m = digits(s, end, &k, 1, 2)) >= 0 && k < end && s[k++] == ':' &&
          (sec = digits(s, end, &k, 1, 2)) >= 0) {
        found_time = 1, hh = h, mm = m, ss = sec;
        continue;
      }
    }
    if (!found_day) {          /* day-of-month: 1*2DIGIT ( non-digit *OCTET ) */
      k = start;
      if ((day = digits(s, end, &k, 1, 2)) >= 0) {
        found_day = 1;
        continue;
      }
    }
    if (!found_month && end - start >= 3) {
      int m;
      for (m = 0; m < 12; m++)
        if (strncasecmp(s + start, months + m * 3, 3) == 0)
          break;
      if (m < 12) {
        found_month = 1, month = m + 1;
        continue;
      }
    }
    if (!found_year) {         /* year: 2*4DIGIT ( non-digit *OCTET ) */
      k = start;
      if ((year = digits(s, end, &k, 2, 4)) >= 0) {
        found_year = 1;
        continue;
      }
    }
  }
  if (!found_time || !found_day || !found_month || !found_year)
    return -1;
  if (year >= 70 && year <= 99)
    year += 1900;
  else if (year >= 0 && year <= 69)
    year += 2000;
  if (day < 1 || day > mdays[month - 1] || year < 1601 || hh > 23 || mm > 59 || ss > 59)
    return -1;
  if (month == 2 && day == 29 && !(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
    return -1;
  *t = days_from_civil(year, month, day) * 86400 + hh * 3600 + mm * 60 + ss;
  return 0;
}
