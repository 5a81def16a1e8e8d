"""`trakr up`, `trakr status`, `trakr demo`: run and watch every process on one host."""
