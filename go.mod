module github.com/starttls/starttls

go 1.26
