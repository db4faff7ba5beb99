// Command criimage is the one static program in the images `make critest`
// builds for the CRI conformance suite, standing in for the upstream
// images' programs by the name it is installed under:
//
//   - nginx, httpd: a web server that, like the real ones, first writes its
//     PID file (-pid; failing when it cannot, as they do), says so on
//     stderr, and answers every GET with 200 on -listen; nginx names itself
//     "nginx: master process" in its command line, as nginx's master does;
//   - nnp: prints "Effective uid: N", as the nonewprivs image's program does
//     (installed setuid root, it shows whether no_new_privs held).
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	if filepath.Base(os.Args[0]) == "nnp" {
		fmt.Printf("Effective uid: %d\n", os.Geteuid())
		return
	}
	listen := flag.String("listen", ":80", "address to serve on")
	pid := flag.String("pid", "", "PID file to write first")
	flag.Parse()
	name := filepath.Base(os.Args[0])
	if name == "nginx" {
		// the same process, with the command line nginx's master shows
		self, err := os.Executable()
		if err == nil {
			err = syscall.Exec(self, append([]string{"nginx: master process nginx"}, os.Args[1:]...), os.Environ())
		}
		fmt.Fprintf(os.Stderr, "nginx: %v\n", err)
		os.Exit(1)
	}
	if strings.HasPrefix(name, "nginx:") {
		name = "nginx"
	}
	if *pid != "" {
		if err := os.WriteFile(*pid, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "%s: [emerg] open() %q failed: %v\n", name, *pid, err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "%s: serving on %s\n", name, *listen)
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "<html><body><h1>Welcome to %s!</h1></body></html>\n", name)
	})
	if err := http.ListenAndServe(*listen, nil); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
