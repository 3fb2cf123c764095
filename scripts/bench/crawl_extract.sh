# placeholder, filled in below
bench_crawl_extract() { goal "crawl_extract: not written yet" 'a' n/a; }
bench_crawl_extract_mem() { goal "crawl_extract_mem: not written yet" 'a' n/a; }
